"""Verdicts and their evidence: one versioned JSON schema for every command, plus renderers.

A :class:`CheckReport` is what ``check --json`` prints: the subject (which SDK, which CLI),
the seed, and one :class:`Result` per (bug, CLI behaviour model, backend).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "pytest-agentsdk/verdict/1"
VERDICTS = ("reproduced", "fixed", "hang", "not_applicable", "error")
#: How bad a verdict is, for "the overall verdict is the worst one".
SEVERITY = {"error": 0, "not_applicable": 1, "fixed": 2, "reproduced": 3, "hang": 4}


@dataclass
class Result:
    bug: str
    verdict: str
    backend: str
    model: str | None = None
    examples: int = 0
    manifestations: list[str] = field(default_factory=list)
    counterexample: Any = None  # the minimal example (JSON) for a reproduced / hang verdict
    replay: str | None = None  # a command that replays the counterexample
    reason: str | None = None  # why not_applicable / error
    evidence: dict[str, Any] = field(default_factory=dict)  # bug-specific detail (patterns, frames, tasks)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")

    @property
    def failed(self) -> bool:
        return self.verdict in ("reproduced", "hang")


@dataclass
class CheckReport:
    subject: dict[str, Any]
    seed: int
    results: list[Result] = field(default_factory=list)
    schema: str = SCHEMA

    @property
    def exit_code(self) -> int:
        """0 nothing reproduced, 1 reproduced or hang, 2 the harness could not judge."""
        if any(r.failed for r in self.results):
            return 1
        if any(r.verdict == "error" for r in self.results):
            return 2
        return 0

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "subject": self.subject, "seed": self.seed, "results": [asdict(r) for r in self.results]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckReport:
        return cls(
            subject=data["subject"],
            seed=data["seed"],
            results=[Result(**r) for r in data["results"]],
            schema=data.get("schema", SCHEMA),
        )


def subject_info(sdk_version: str | None, cli_version: str | None, **extra: Any) -> dict[str, Any]:
    return {"sdk_version": sdk_version, "cli_version": cli_version, "python": platform.python_version(), **extra}


# ---------------------------------------------------------------- renderers
def _row(r: Result) -> list[str]:
    detail = ", ".join(r.manifestations) or (r.reason or "")
    return [r.bug, r.model or "-", r.backend, r.verdict, str(r.examples), detail]


def render_table(report: CheckReport) -> str:
    """A fixed-width terminal table, one row per result, then the replay commands."""
    head = ["bug", "model", "backend", "verdict", "examples", "manifestations / reason"]
    rows = [head] + [_row(r) for r in report.results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    lines = [f"claude-agent-sdk {report.subject.get('sdk_version')} (CLI {report.subject.get('cli_version') or 'n/a'}), seed {report.seed}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    for r in report.results:
        if r.failed and r.replay:
            lines.append(f"replay {r.bug}/{r.model or '-'}/{r.backend}: {r.replay}")
    return "\n".join(lines)


def render_markdown(report: CheckReport) -> str:
    """A Markdown table with the minimal counterexamples folded, for PR comments."""
    lines = [
        f"**claude-agent-sdk {report.subject.get('sdk_version')}** (CLI {report.subject.get('cli_version') or 'n/a'}), seed `{report.seed}`",
        "",
        "| bug | model | backend | verdict | examples | manifestations / reason |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in report.results]
    for r in report.results:
        if r.failed and r.counterexample is not None:
            lines += [
                "",
                f"<details><summary>{r.bug} / {r.model or '-'} / {r.backend}: minimal counterexample</summary>",
                "",
                "```json",
                json.dumps(r.counterexample, indent=2, default=str),
                "```",
                "",
                f"Replay: `{r.replay}`",
                "</details>",
            ]
    return "\n".join(lines)
