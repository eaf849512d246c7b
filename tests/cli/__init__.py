import os
import subprocess
import sys

from tests.conftest import REPO


def run_cli(*args, **kwargs):
    """The CLI in a fresh process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "review", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)
