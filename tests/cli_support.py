"""``fleetplace`` run in this process (``fleetplace.cli.main``, as the console script runs it), output captured.

Saves an interpreter start per call where a test runs many commands; tests of signals, exit on
a real process and concurrency still start real processes.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

from fleetplace.cli import main


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> Ran:
    """``main(args)`` with stdout and stderr captured, ``$FLEETPLACE_STORE`` unset meanwhile."""
    saved = os.environ.pop("FLEETPLACE_STORE", None)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        if saved is not None:
            os.environ["FLEETPLACE_STORE"] = saved
    return Ran(code, out.getvalue(), err.getvalue())
