"""What /proc says of this machine's other processes: how tests and benchmarks check that a
command left nothing behind (Linux only, as the commands' own cleanup is)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    group: int
    state: str  # "Z": a zombie, dead but not reaped yet
    cmdline: str  # empty for a zombie

    @property
    def alive(self) -> bool:
        return self.state != "Z"


def process(pid: int) -> Process | None:
    """``pid``'s entry, None once it is gone (reaped)."""
    entry = Path("/proc", str(pid))
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return None
    return Process(pid, int(fields[1]), int(fields[2]), fields[0], cmdline)


def processes() -> list[Process]:
    """Every process but this one, zombies included."""
    found = (process(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit() and int(entry.name) != os.getpid())
    return [p for p in found if p is not None]


def naming(marker: str) -> list[str]:
    """Live processes whose command line contains ``marker`` (not a /proc reader like this one)."""
    return [f"{p.pid}: {p.cmdline[:120]}" for p in processes() if marker in p.cmdline and "/proc" not in p.cmdline]
