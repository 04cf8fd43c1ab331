"""Every row of the README's "Bad input" table, run as written: a command gets exit 2 and one line
holding the row's message; a Python call raises the row's exception with that message."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_agentsdk import wire
from pytest_agentsdk.script import Script

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m pytest_agentsdk"
#: Commands that ask the package index, or build and judge envs (``matrix --from-json`` does neither).
MACHINE = ("matrix", "verify", "bisect")


def table_rows() -> list[tuple[str, str]]:
    """(malformed value, expected message) per row: the first code span of each of those cells."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") and "`" in line else []
        if len(cells) == 3:
            value, expected = (re.search(r"`([^`]+)`", cell).group(1) for cell in cells[1:])  # type: ignore[union-attr]
            rows.append((value, expected))
    return rows


ROWS = table_rows()


def params() -> list[object]:
    out = []
    for value, expected in ROWS:
        words = shlex.split(value)
        machine = value.startswith(COMMAND) and words[3:4] and words[3] in MACHINE and "--from-json" not in words
        out.append(pytest.param(value, expected, id=value[:80], marks=[pytest.mark.machine] if machine else []))
    return out


def test_the_table_covers_commands_and_the_python_api() -> None:
    assert len(ROWS) >= 30
    assert sum(value.startswith(COMMAND) for value, _ in ROWS) >= 20
    assert {expected.split(":")[0] for value, expected in ROWS if not value.startswith(COMMAND)} == {"ScriptError", "TypeError"}


@pytest.mark.parametrize(("value", "expected"), params())
def test_bad_input_row(value: str, expected: str) -> None:
    if value.startswith(COMMAND):
        proc = subprocess.run([sys.executable, "-m", "pytest_agentsdk", *shlex.split(value)[3:]], cwd=REPO, capture_output=True,
                              text=True, timeout=900)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        errors = [line for line in lines if line.startswith("pytest-agentsdk: error: ")]
        assert len(errors) == 1 and errors[0] == lines[-1], proc.stderr[-2000:]
        assert expected in errors[0]
    else:
        kind, message = expected.split(": ", 1)
        with pytest.raises(Exception) as raised:
            eval(value, {"Script": Script, "wire": wire})  # the README's own example call
        assert type(raised.value).__name__ == kind
        assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.machine
def test_error_cells_point_at_their_reason() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_agentsdk", "matrix", "--sdk", "0.1.9", "--sdk", "0.1.40", "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    rows = proc.stdout.splitlines()
    assert rows[1].split() == ["0.1.9", "error", "[1]", "error", "[1]", "error", "[1]"]
    assert rows[2].split() == ["0.1.40", "error", "[2]", "error", "[2]", "error", "[2]"]
    assert "  [1] claude-agent-sdk 0.1.9 is older than the supported range (>= 0.1.44)" in rows
    assert "  [2] claude-agent-sdk 0.1.40 is older than the supported range (>= 0.1.44)" in rows
