"""Child processes for the one-command tools (`serve`, `demo`): each child leads its
own process group, so stopping it also stops what it started (django-q2's worker
pool), and on Linux it is told to stop if we die first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(command: Sequence[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        list(command), start_new_session=True, preexec_fn=_die_with_parent, **kwargs
    )


def stop(children: Sequence[subprocess.Popen], *, grace: float = 20.0) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL what is left."""
    for child in reversed(children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGTERM)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)  # stragglers in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
