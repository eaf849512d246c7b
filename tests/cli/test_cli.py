"""The command line as a whole (review/cli/__init__.py): every wing's commands in one
parser, in their order, and main's way with errors."""
import argparse
import errno
import os
import sys

import pytest

from review import cli
from review.cli import build_parser, main
from review.cli.common import Command

from tests.cli import run_cli

HELP_ORDER = ["detect", "fetch", "import", "queue", "verdict", "trends", "export", "training-samples",
              "sample", "assess", "evidence", "models", "scenes", "train", "evaluate", "rescore", "verify-log",
              "log", "verify-export", "user", "settings", "agreement", "sites", "serve", "report", "backup", "prepare-imagery",
              "context", "timeseries", "dossier", "verify-dossier"]


def _subcommands(parser):
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub


def test_every_wings_commands_are_in_one_parser_in_the_help_order():
    assert sorted(cli.ORDER) == sorted(cli.COMMANDS) and len(set(cli.ORDER)) == len(cli.ORDER)
    sub = _subcommands(build_parser())
    assert list(sub.choices) == HELP_ORDER
    assert [a.dest for a in sub._choices_actions] == HELP_ORDER
    for name, command in cli.COMMANDS.items():
        assert sub.choices[name].prog == f"python -m review {name}"
        assert callable(command.run)


def test_help_and_version_from_a_fresh_process():
    done = run_cli("--help")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("usage: python -m review [-h] [--version]")
    assert "{" + ",".join(HELP_ORDER) + "}" in done.stdout
    assert [line.split()[0] for line in done.stdout.splitlines()
            if line.startswith("    ") and not line.startswith("     ")] == HELP_ORDER
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("mining-review ")


def _failing(monkeypatch, error):
    def run(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "models", Command(cli.COMMANDS["models"].add, run))


@pytest.mark.parametrize("error, code, said", [
    (cli.ReviewError("the model card is missing"), 2, "error: the model card is missing\n"),
    (OSError(errno.EACCES, "Permission denied", "/read-only/out.geojson"), 2,
     "error: Permission denied: /read-only/out.geojson\n"),
    (OSError("disk full"), 2, "error: disk full\n"),
    (KeyboardInterrupt(), 130, "interrupted; nothing was stored\n"),
])
def test_main_turns_errors_into_one_line_and_an_exit_status(monkeypatch, capsys, error, code, said):
    _failing(monkeypatch, error)
    assert main(["models"]) == code
    captured = capsys.readouterr()
    assert captured.err == said and captured.out == ""


def test_a_closed_pipe_stops_quietly(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", sys.stdout)          # main swaps it for os.devnull
    _failing(monkeypatch, BrokenPipeError())
    assert main(["models"]) == 0
    assert sys.stdout.name == os.devnull                   # what is still printed goes nowhere
    sys.stdout.close()
    assert capsys.readouterr().err == ""
