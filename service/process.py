"""Leaving a process that held a Temporal client."""

from __future__ import annotations

import os
import sys


def exit_now(code: int) -> None:
    """Leave without interpreter teardown: the Temporal client's native threads can crash it at exit
    (PyGILState_Release, temporalio sdk-python #300), turning a finished command into exit -6."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
