"""Patched copies of an installed ``claude_agent_sdk`` package, laid out as source trees that
:func:`pytest_agentsdk.envs.ensure_env` builds like any other subject.

Fix candidates (the tests' material) and mutants (:mod:`pytest_agentsdk.mutants`) are both made
here. The copy is made file by file, so the installed package (whose files uv hard-links into its
cache) is never written to. A patch names its anchor text, which must occur exactly once: a base
release that moved on fails loudly (:class:`StalePatch`) instead of patching the wrong line.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Prints the directory of the env's installed claude_agent_sdk package (``env.run(["-c", ...])``).
PACKAGE_DIR_CODE = "import claude_agent_sdk, os; print(os.path.dirname(claude_agent_sdk.__file__))"


@dataclass(frozen=True)
class Patch:
    file: str  # relative to the claude_agent_sdk package
    old: str
    new: str


class StalePatch(Exception):
    """A patch's anchor does not occur exactly once in the base package."""


def package_version(package: Path) -> str | None:
    """The ``__version__`` a claude_agent_sdk package directory declares."""
    found = re.search(r'__version__ = "([^"]+)"', (package / "_version.py").read_text())
    return found.group(1) if found else None


def build_source_tree(base_package: Path, dest: Path, patches: Sequence[Patch], *, local: str, what: str) -> Path:
    """A source tree at ``dest`` holding ``base_package`` with ``patches`` applied, versioned
    ``BASE+local`` so reports say what they judge; ``what`` describes it in its README."""
    package = dest / "src" / "claude_agent_sdk"
    shutil.copytree(base_package, package, ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    for patch in patches:
        path = package / patch.file
        text = path.read_text() if path.is_file() else ""
        if text.count(patch.old) != 1:
            found = "missing file" if not path.is_file() else f"found {text.count(patch.old)} times"
            raise StalePatch(f"{what}: anchor in {patch.file} {found}, not once: {patch.old[:60]!r}")
        path.write_text(text.replace(patch.old, patch.new))
    version = f"{package_version(base_package)}+{re.sub(r'[^a-z0-9]+', '.', local.lower())}"
    (package / "_version.py").write_text(f'__version__ = "{version}"\n')
    (dest / "README.md").write_text(f"claude-agent-sdk {package_version(base_package)}, patched: {what}.\n")
    (dest / "pyproject.toml").write_text(_PYPROJECT.format(version=version))
    return dest


#: The release's own build configuration (hatchling, same dependencies), trimmed to what a build needs.
_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "claude-agent-sdk"
version = "{version}"
description = "claude-agent-sdk, patched"
readme = "README.md"
requires-python = ">=3.10"
dependencies = [
    "anyio>=4.0.0",
    "sniffio>=1.0.0",
    "typing_extensions>=4.0.0; python_version<'3.11'",
    "mcp>=1.23.0,<3.0.0",
    "jsonschema>=4.20.0",
]

[tool.hatch.build.targets.wheel]
packages = ["src/claude_agent_sdk"]
"""
