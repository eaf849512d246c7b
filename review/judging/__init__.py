"""Judging: people deciding what a detection is.

Owns the review queue, its filters and claims (queue), verdicts and a detection's status
derived from its history (verdicts), agreement between reviewers (agreement), accounts,
roles and sign-in tokens (users) and the settings a project's editors choose
(project_settings), and the verdict log as a transparency log: its RFC 9162 Merkle tree
(merkle), C2SP signed notes (signed_note) and signed checkpoints (transparency_log). The
hash chain of the verdicts table and each verdict's log entry are the root's verdict_log.

May import: the root modules and detection.
"""
