"""Fix candidates and faulty candidates, as test material: one module per bug, each a dict of
named patches over one release's ``claude_agent_sdk`` package.

Each candidate is a patched copy of a release's package laid out as a source tree
(``pyproject.toml`` + ``src/``), so ``envs.ensure_env(path)`` builds and installs it like any other
subject. The copy is made file by file: the installed env's files (hard-linked by uv) are never
touched. Patches name their anchor text; a base release that moved on fails loudly.
The table of what each candidate changes and the change ``verify`` must report stands in each
bug's module.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ._patch import BASE_VERSION, Patch
from .cross_task_close import CANDIDATES as _CROSS_TASK_CLOSE
from .late_task_notification import CANDIDATES as _LATE_TASK_NOTIFICATION
from .premature_completion import CANDIDATES as _PREMATURE_COMPLETION

CANDIDATES: dict[str, tuple[Patch, ...]] = {**_CROSS_TASK_CLOSE, **_LATE_TASK_NOTIFICATION, **_PREMATURE_COMPLETION}


def build_candidate(name: str, base_package: Path, dest: Path) -> Path:
    """A source tree at ``dest`` holding ``base_package`` (an installed claude_agent_sdk) patched
    as candidate ``name``, versioned ``BASE+name`` so reports say which candidate they judge."""
    patches = CANDIDATES[name]
    package = dest / "src" / "claude_agent_sdk"
    shutil.copytree(base_package, package, ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    version_file = package / "_version.py"
    base = re.search(r'__version__ = "([^"]+)"', version_file.read_text())
    if base is None or base.group(1) != BASE_VERSION:
        raise RuntimeError(f"candidates patch claude-agent-sdk {BASE_VERSION}; {base_package} is {base and base.group(1)}")
    version = f"{BASE_VERSION}+{name.replace('_', '.')}"
    version_file.write_text(f'__version__ = "{version}"\n')
    for patch in patches:
        path = package / patch.file
        text = path.read_text()
        if text.count(patch.old) != 1:
            raise RuntimeError(f"candidate {name}: anchor not found exactly once in {patch.file}: {patch.old[:60]!r}")
        path.write_text(text.replace(patch.old, patch.new))
    (dest / "README.md").write_text(f"claude-agent-sdk {BASE_VERSION}, patched as fix candidate {name!r}.\n")
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
description = "claude-agent-sdk fix candidate"
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
