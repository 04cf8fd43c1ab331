"""Where the harness keeps what it builds and fetches from run to run (release envs, the release
list, source fingerprints, real CLIs, bytecode), and how a file there is written: whole or not at
all, for another process reading it meanwhile, with nothing left behind by an interrupt."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from . import interrupt


def root() -> Path:
    """``$PYTEST_AGENTSDK_CACHE`` or ``~/.cache/pytest-agentsdk``."""
    configured = os.environ.get("PYTEST_AGENTSDK_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "pytest-agentsdk"


def atomic_write(path: Path, data: str | bytes, *, best_effort: bool = False) -> None:
    """Write ``path`` whole, through a file beside it renamed into place. ``best_effort``: for a file
    that can be made again, an OSError only means it is not written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with interrupt.removed_on_interrupt(partial):
            if isinstance(data, bytes):
                partial.write_bytes(data)
            else:
                partial.write_text(data)
            os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):  # no partial file where the directory itself failed
            partial.unlink(missing_ok=True)
        if not best_effort:
            raise
