"""python -m review ...: the command line, for scripted work.

This package owns the command line: the parser, one module per wing that adds that wing's
subcommands and holds their handlers (each parses its arguments, calls the wing and
prints), and `common` for what they share. Domain errors become one line on stderr and
exit status 2; nothing is written to the output file or the database unless the whole run
succeeded. Heavy libraries (TensorFlow, GeoPandas, rasterio, tqdm) are imported inside the
handlers, so `--help` and light commands stay quick.

May import: the root modules and every domain wing (detection, judging, review_imagery,
analysis, publishing, learning); never review.ui.
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import ReviewError
from . import (analysis, assessment, context, detection, dossier, judging, learning, publishing,
               review_imagery, timeseries)

EXIT_ERROR = 2

# Every subcommand by name, from the module of its wing.
COMMANDS = {**detection.COMMANDS, **judging.COMMANDS, **review_imagery.COMMANDS,
            **analysis.COMMANDS, **assessment.COMMANDS,
            **context.COMMANDS, **timeseries.COMMANDS, **dossier.COMMANDS, **publishing.COMMANDS,
            **learning.COMMANDS}

# The order `--help` lists them in.
ORDER = ("detect", "fetch", "import", "queue", "verdict", "trends", "export", "training-samples",
         "sample", "assess", "evidence", "models", "scenes", "train", "evaluate", "rescore", "verify-log",
         "log", "verify-export", "user", "settings", "agreement", "sites", "serve", "report", "backup", "prepare-imagery",
         *context.COMMANDS, *timeseries.COMMANDS, *dossier.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m review",
                                     description="Find mining in satellite tiles and review it.")
    parser.add_argument("--version", action="version", version=f"mining-review {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ORDER:
        COMMANDS[name].add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as exc:
        # Output paths the user gave: unwritable folder, full disk.
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing was stored", file=sys.stderr)
        return 130
