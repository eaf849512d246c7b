"""Commands of the judging wing: queue, verdict, verify-log, user, settings, agreement and
backup."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import settings
from ..errors import ReviewError
from .common import Command, add_db, open_db, os_user, status


def add_queue(sub) -> argparse.ArgumentParser:
    queue = sub.add_parser("queue", help="pending detections as JSON lines")
    queue.add_argument("--limit", type=int, default=20)
    queue.add_argument("--order", default="score",
                       help="score | threshold | newest | uncertain (under the trained model "
                            "of the latest rescore)")
    queue.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    queue.add_argument("--min-score", type=float)
    queue.add_argument("--max-score", type=float)
    queue.add_argument("--status", default="pending", help="pending | verified | false_positive | "
                       "unsure | needs_second_opinion | disputed | all")
    queue.add_argument("--site", type=int, help="only detections of this site (see `sites`)")
    add_db(queue)
    return queue


def add_verdict(sub) -> argparse.ArgumentParser:
    verdict = sub.add_parser("verdict", help="record a verdict on a detection")
    verdict.add_argument("id", type=int)
    verdict.add_argument("verdict", help="verified | false_positive | unsure | undo")
    verdict.add_argument("--reviewer", help="who decided (default: this computer's user name); "
                         "with accounts, the account, with --password-stdin")
    verdict.add_argument("--password-stdin", action="store_true",
                         help="with accounts: read the reviewer's password from standard input")
    verdict.add_argument("--reason", help="for false_positive: riverbank, aquaculture, landslide, "
                                          "industrial, agriculture, cloud, settlement, other")
    verdict.add_argument("--note")
    verdict.add_argument("--final", action="store_true",
                         help="an editor's decision that settles a disputed detection")
    verdict.add_argument("--before", help="imagery shown as before: SOURCE@START/END")
    verdict.add_argument("--after", help="imagery shown as after: SOURCE@START/END")
    add_db(verdict)
    return verdict


def add_verify_log(sub) -> argparse.ArgumentParser:
    verify_log = sub.add_parser("verify-log", help="check the verdict log: its hash chain, and "
                                "that signed checkpoints still hold (the given ones, else those kept)")
    verify_log.add_argument("--checkpoint", type=Path, action="append", default=[],
                            help="a published checkpoint file (repeatable)")
    verify_log.add_argument("--key", help="the published verifier key NAME+HEX8+BASE64 "
                                          "(default: this machine's log key)")
    add_db(verify_log)
    return verify_log


def add_log(sub) -> argparse.ArgumentParser:
    log = sub.add_parser("log", help="the verdict log's signing key and signed checkpoints")
    log.add_argument("action", choices=["key", "checkpoint", "checkpoints"],
                     help="key: make the key on first use, print the verifier key to publish; "
                          "checkpoint: sign the log as it stands; checkpoints: those kept")
    log.add_argument("--out", type=Path, help="checkpoint: also write it to this file")
    add_db(log)
    return log


def add_user(sub) -> argparse.ArgumentParser:
    user = sub.add_parser("user", help="accounts: with none, the dashboard has one local user "
                                       "and no sign-in; with any, everyone signs in")
    user.add_argument("action", choices=["add", "passwd", "role", "list", "remove"])
    user.add_argument("name", nargs="?")
    user.add_argument("--role", default="reviewer", help="reviewer (default) | editor | admin")
    user.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input (scripts)")
    add_db(user)
    return user


def add_settings(sub) -> argparse.ArgumentParser:
    project = sub.add_parser("settings", help="project settings shared by every reviewer "
                                               "(second_opinion: off | verified | all; log_origin: "
                                               "the verdict log's name, before its first checkpoint)")
    project.add_argument("action", choices=["show", "set"])
    project.add_argument("key", nargs="?")
    project.add_argument("value", nargs="?")
    add_db(project)
    return project


def add_agreement(sub) -> argparse.ArgumentParser:
    agree = sub.add_parser("agreement", help="how far reviewers agree: percent agreement, "
                                             "Cohen's and Fleiss' kappa, Gwet's AC1 and "
                                             "Krippendorff's alpha")
    agree.add_argument("--format", choices=["table", "csv", "json"], default="table")
    agree.add_argument("--seed", type=int, default=1, help="seed of the bootstrap interval")
    add_db(agree)
    return agree


def add_backup(sub) -> argparse.ArgumentParser:
    backup = sub.add_parser("backup", help="consistent copy of the database while people review")
    backup.add_argument("out", type=Path, help="the backup file to write")
    add_db(backup)
    return backup


def cmd_queue(args: argparse.Namespace) -> int:
    from ..judging.queue import Filters, as_json_line, listing

    filters = Filters(sources=args.source, score_min=args.min_score, score_max=args.max_score,
                      status=status(args.status), site_id=args.site)
    for row in listing(open_db(args), filters, order=args.order, limit=args.limit):
        print(as_json_line(row))
    return 0


def imagery(text: str | None):
    """--before/--after SOURCE@START/END as the imagery a verdict records; None if not given."""
    from ..judging.verdicts import Imagery

    if not text:
        return None
    source, _, dates = text.partition("@")
    start, _, end = dates.partition("/")
    return Imagery(source=source or None, start=start or None, end=end or None)


def account(db, args: argparse.Namespace, action: str):
    """With accounts, the signed-in account of --reviewer and --password-stdin, allowed to
    do `action`; without, None (the name given, else the OS user, is recorded)."""
    from ..judging import users

    if not users.accounts_configured(db):
        return None
    if not (args.reviewer and args.password_stdin):
        raise ReviewError("this database has accounts: give --reviewer NAME and the password "
                          "on standard input with --password-stdin")
    signed_in = users.sign_in(db, args.reviewer, sys.stdin.readline().rstrip("\r\n"))
    signed_in.require(action)
    return signed_in


def cmd_verdict(args: argparse.Namespace) -> int:
    from ..judging import verdicts
    from ..judging.queue import get

    db = open_db(args)
    signed_in = account(db, args, "final" if args.final else "verdict")
    reviewer = signed_in.name if signed_in else (args.reviewer or os_user())
    if args.verdict == verdicts.UNDO:
        if signed_in is not None:
            taken = verdicts.undoable(db, args.id)
            if taken is not None and taken.get("final") and not signed_in.can("final"):
                raise ReviewError(f"the latest decision on detection {args.id} is final; only "
                                  "an editor who made it can take it back")
        verdicts.undo(db, args.id, reviewer, via="cli", own_only=signed_in is not None)
    else:
        verdicts.record(db, args.id, reviewer, args.verdict, reason=args.reason, note=args.note,
                        before=imagery(args.before), after=imagery(args.after), via="cli",
                        final=args.final)
    print(json.dumps({"id": args.id, "status": get(db, args.id)["status"]}))
    return 0


def cmd_verify_log(args: argparse.Namespace) -> int:
    from ..judging import signed_note, transparency_log
    from ..verdict_log import verify

    key = signed_note.parse_verifier(args.key) if args.key else None
    notes = [(f"checkpoint {path}", read_text(path)) for path in args.checkpoint]
    db = open_db(args)
    check = verify(db)
    if not check.ok:
        raise ReviewError(f"the verdict log does not verify: {check.summary()}")
    if not notes:
        notes = [(k.label(), k.note) for k in transparency_log.kept(db)]
    if notes and key is None and transparency_log.verifier(db, create=False) is None:
        raise ReviewError("no log key on this machine to check the checkpoints with; give the "
                          "published one with --key")
    held = transparency_log.check(db, notes, key) if notes else []
    print(check.summary())
    for line in held:
        print(line)
    if not notes:
        print("no checkpoint to check against: make one with `log checkpoint` and publish it")
    return 0


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ReviewError(f"{path}: not a text file, so not a checkpoint") from None


def cmd_log(args: argparse.Namespace) -> int:
    from .. import files
    from ..judging import transparency_log

    db = open_db(args)
    if args.action == "key":
        existed = transparency_log.key_path().exists()
        verifier = transparency_log.verifier(db)
        print(f"log key {'at' if existed else 'made at'} {transparency_log.key_path()} (keep it "
              f"private); log {verifier.name}; publish this verifier key:", file=sys.stderr)
        print(verifier.text())
    elif args.action == "checkpoint":
        kept = transparency_log.checkpoint(db, by=os_user())
        if args.out:
            files.write_text(args.out, kept.note, make_folder=False)
        print(kept.note, end="")
        print(f"checkpoint {kept.id}: {kept.checkpoint.size:,} verdicts"
              + (f", written to {args.out}" if args.out else ""), file=sys.stderr)
    else:
        for kept in transparency_log.kept(db):
            print(f"{kept.id:>5}  {kept.created_at[:19].replace('T', ' ')}  "
                  f"{kept.checkpoint.size:>9,} verdicts  {kept.created_by or ''}")
    return 0


def new_password(args: argparse.Namespace) -> str:
    """The password of `user add|passwd`: standard input's first line, or asked twice."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ReviewError("the two passwords differ; nothing was changed")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    from ..judging import users

    db = open_db(args)
    if args.action == "list":
        for account in users.listing(db):
            print(f"{account['name']:24} {account['role']:9} since {account['created_at'][:10]}")
        if not users.accounts_configured(db):
            print("no accounts: the dashboard runs with one local user and no sign-in",
                  file=sys.stderr)
        return 0
    if not args.name:
        raise ReviewError(f"user {args.action} needs a user name")
    if args.action == "add":
        first = not users.accounts_configured(db)
        account = users.add(db, args.name, new_password(args), role=args.role)
        print(f"account {account.name} added as {account.role}"
              + ("; the dashboard now asks everyone to sign in" if first else ""))
    elif args.action == "passwd":
        users.check_name(args.name)
        users.set_password(db, args.name, new_password(args))
        print(f"password of {args.name} changed; its sessions are signed out")
    elif args.action == "role":
        users.set_role(db, args.name, args.role)
        print(f"{args.name} is now {args.role}")
    else:
        users.remove(db, args.name)
        print(f"account {args.name} removed" + ("" if users.accounts_configured(db) else
              "; no accounts are left, so the dashboard runs without sign-in"))
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from ..judging import project_settings, verdicts

    db = open_db(args)
    if args.action == "show":
        for key, value in project_settings.all_values(db).items():
            print(f"{key} = {value or '(made unique to this database at the first checkpoint)'}")
        return 0
    if not (args.key and args.value):
        raise ReviewError("settings set needs a key and a value, e.g. settings set second_opinion verified")
    project_settings.check(args.key, args.value)
    if args.key == "log_origin":
        from ..judging import transparency_log

        transparency_log.set_origin(db, args.value, by=os_user())
        print(f"log_origin = {args.value}; checkpoints and the verifier key now carry this name")
        return 0
    change = verdicts.set_second_opinion(db, args.value, by=os_user())
    message = f"second_opinion = {change['mode']}; {change['changed']} detection statuses re-derived"
    if change["waiting_before"] and args.value == "off":
        message += (f"; {change['waiting_before']} detections were waiting for a second opinion "
                    "or disputed, their verdicts are kept")
    print(message)
    return 0


def number(value, digits: int = 2) -> str:
    """A figure of the agreement table, '-' where there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def cmd_agreement(args: argparse.Namespace) -> int:
    from ..judging.agreement import agreement

    result = agreement(open_db(args), seed=args.seed)
    if args.format == "json":
        print(json.dumps(result.to_json()))
        return 0
    if not result.pairs:
        print("no detection has verdicts from two reviewers yet, so there is no agreement to measure")
        return 0
    figures = result.to_json()
    overall = figures["overall"]
    for note in (result.too_few, result.prevalence_note):
        if note:
            print(f"note: {note}", file=sys.stderr)
    if args.format == "csv":
        # New columns go at the end, so the first five keep their places.
        print("reviewer_a,reviewer_b,detections,percent_agreement,kappa,ac1,alpha")
        for pair in figures["pairs"]:
            print(",".join("" if v is None else str(v) for v in pair.values()))
        print(",".join(["overall", ""] + ["" if overall[k] is None else str(overall[k]) for k in
                                          ("detections", "percent_agreement", "kappa", "ac1", "alpha")]))
        return 0

    def interval(name: str) -> str:
        return f"{number(overall[name])} (95% {number(overall[name + '_low'])} to {number(overall[name + '_high'])})"

    print(f"overall: {overall['detections']} detections judged twice, "
          f"{number(overall['percent_agreement'], 1)}% agreement, Fleiss' kappa {interval('kappa')}, "
          f"Gwet's AC1 {interval('ac1')}, Krippendorff's alpha {interval('alpha')}")
    for pair in figures["pairs"]:
        print(f"  {pair['reviewer_a']} / {pair['reviewer_b']}: {pair['detections']} detections, "
              f"{number(pair['percent_agreement'], 1)}% agreement, Cohen's kappa {number(pair['kappa'])}, "
              f"Gwet's AC1 {number(pair['ac1'])}, Krippendorff's alpha {number(pair['alpha'])}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from ..store import backup

    db = open_db(args)
    path = backup(db, args.out)
    print(f"backup of {args.db or settings.db_path()} written to {path} "
          f"({db['verdicts'].count:,} verdicts); restore by copying it back while nobody reviews")
    return 0


COMMANDS = {"queue": Command(add_queue, cmd_queue), "verdict": Command(add_verdict, cmd_verdict),
            "verify-log": Command(add_verify_log, cmd_verify_log), "log": Command(add_log, cmd_log),
            "user": Command(add_user, cmd_user), "settings": Command(add_settings, cmd_settings),
            "agreement": Command(add_agreement, cmd_agreement),
            "backup": Command(add_backup, cmd_backup)}
