"""Judging: people deciding what a detection is.

Owns the review queue, its filters and claims (queue), verdicts and a detection's status
derived from its history (verdicts), agreement between reviewers (agreement), accounts,
roles and sign-in tokens (users) and the settings a project's editors choose
(project_settings). The hash chain of the verdicts table is the root's verdict_log.

May import: the root modules and detection.
"""
