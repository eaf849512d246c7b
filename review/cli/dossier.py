"""Commands of the site dossier: `dossier SITE_ID OUT.pdf` and `verify-dossier FILE.json`."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import Command, add_db, open_db, os_user


def add_dossier(sub) -> argparse.ArgumentParser:
    dossier = sub.add_parser("dossier", help="a site's dossier to publish: OUT.pdf and its JSON "
                                             "twin OUT.json, every verdict proved against the "
                                             "signed verdict log")
    dossier.add_argument("site_id", type=int)
    dossier.add_argument("out", type=Path, help="the PDF to write (OUT.json is written beside it)")
    dossier.add_argument("--with-reviewers", action="store_true",
                         help="name the reviewers and reporters (default: reviewer 1, reporter 1...)")
    add_db(dossier)
    return dossier


def cmd_dossier(args: argparse.Namespace) -> int:
    from ..publishing.dossier import outputs, write

    outputs(args.out)                  # a bad path is refused before the database is opened
    made = write(open_db(args), args.site_id, args.out, with_names=args.with_reviewers, by=os_user())
    print(made.summary(args.out))
    return 0


def add_verify_dossier(sub) -> argparse.ArgumentParser:
    check = sub.add_parser("verify-dossier", help="check a dossier's JSON twin on its own: the "
                                                  "signed checkpoint and every verdict's proof")
    check.add_argument("file", type=Path)
    check.add_argument("--key", help="the publisher's verifier key NAME+HEX8+BASE64 (default: the "
                                     "key the file names, which proves only that it is whole)")
    return check


def cmd_verify_dossier(args: argparse.Namespace) -> int:
    from ..publishing.dossier import check

    result = check(args.file, args.key)
    print(result.summary() + ("" if args.key else "; give --key to check it is the publisher's"))
    return 0


COMMANDS = {"dossier": Command(add_dossier, cmd_dossier),
            "verify-dossier": Command(add_verify_dossier, cmd_verify_dossier)}
