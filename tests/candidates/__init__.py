"""Fix candidates and faulty candidates, as test material: one module per bug, each a dict of
named patches over one release's ``claude_agent_sdk`` package.

Each candidate is a patched copy of a release's package laid out as a source tree
(``pyproject.toml`` + ``src/``), so ``envs.ensure_env(path)`` builds and installs it like any other
subject. The copy and the patching are :mod:`pytest_agentsdk.patching`'s (mutants use them too).
The table of what each candidate changes and the change ``verify`` must report stands in each
bug's module.
"""

from __future__ import annotations

from pathlib import Path

from pytest_agentsdk import patching

from ._patch import BASE_VERSION, Patch
from .cross_task_close import CANDIDATES as _CROSS_TASK_CLOSE
from .late_task_notification import CANDIDATES as _LATE_TASK_NOTIFICATION
from .premature_completion import CANDIDATES as _PREMATURE_COMPLETION

CANDIDATES: dict[str, tuple[Patch, ...]] = {**_CROSS_TASK_CLOSE, **_LATE_TASK_NOTIFICATION, **_PREMATURE_COMPLETION}
#: the bug each candidate is for: the name of its module, whose table says what ``verify`` must report
BUG_OF: dict[str, str] = {name: bug for bug, group in (("cross_task_close", _CROSS_TASK_CLOSE),
                                                       ("late_task_notification", _LATE_TASK_NOTIFICATION),
                                                       ("premature_completion", _PREMATURE_COMPLETION)) for name in group}


def build_candidate(name: str, base_package: Path, dest: Path) -> Path:
    """A source tree at ``dest`` holding ``base_package`` (an installed claude_agent_sdk) patched
    as candidate ``name``, versioned ``BASE+name`` so reports say which candidate they judge."""
    if (base := patching.package_version(base_package)) != BASE_VERSION:
        raise RuntimeError(f"candidates patch claude-agent-sdk {BASE_VERSION}; {base_package} is {base}")
    return patching.build_source_tree(base_package, dest, CANDIDATES[name], local=name, what=f"fix candidate {name!r}")
