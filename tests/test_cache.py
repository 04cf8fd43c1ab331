"""The cache's one root and its whole-or-nothing writes (envs, sources, real CLIs and drawings use them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentsdk import cache


def test_the_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTEST_AGENTSDK_CACHE", str(tmp_path / "c"))
    assert cache.root() == tmp_path / "c"
    monkeypatch.delenv("PYTEST_AGENTSDK_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.root() == tmp_path / ".cache" / "pytest-agentsdk"


@pytest.mark.parametrize("data", ["text", b"\x00bytes"])
def test_a_write_lands_whole_and_leaves_nothing_beside_it(tmp_path: Path, data: str | bytes) -> None:
    target = tmp_path / "deep" / "file"
    cache.atomic_write(target, "old")
    cache.atomic_write(target, data)
    assert (target.read_bytes() if isinstance(data, bytes) else target.read_text()) == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]


def test_a_failed_write_raises_or_is_let_go_and_leaves_nothing(tmp_path: Path) -> None:
    """A directory where the file should be: os.replace fails after the partial file is written."""
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        cache.atomic_write(target, "x")
    cache.atomic_write(target, b"x", best_effort=True)  # a drawing that cannot be kept is drawn again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    (tmp_path / "a-file").write_text("")
    cache.atomic_write(tmp_path / "a-file" / "x", b"x", best_effort=True)  # no directory to write in, nor to clean
    with pytest.raises(OSError):
        cache.atomic_write(tmp_path / "a-file" / "x", "x")
