"""Verdicts and their evidence: one versioned JSON schema for every command, plus renderers.

A :class:`CheckReport` is what ``check --json`` prints: the subject (which SDK, which CLI),
the seed, and one :class:`Result` per (bug, CLI behaviour model, backend).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion, Version

SCHEMA = "pytest-agentsdk/verdict/2"
#: ``warnings``: only manifestations users see with warnings enabled (a ResourceWarning, an async
#: generator GC warning); ``reproduced``: something a successful run shows by default.
VERDICTS = ("reproduced", "warnings", "fixed", "hang", "not_applicable", "error")
RAN = ("reproduced", "warnings", "fixed", "hang")  # verdicts of a scenario that ran
#: The change of a row the candidate ran and the baseline could not (see :func:`classify_change`).
GAINS = "gains the surface"


@dataclass
class Result:
    bug: str
    verdict: str
    backend: str
    model: str | None = None
    examples: int = 0
    manifestations: list[str] = field(default_factory=list)  # the union over everything that ran
    quiet: list[str] = field(default_factory=list)  # those shown only with warnings enabled
    coverage: str | None = None  # what was explored: sweep and search sizes, seed and budget
    tradeoffs: list[str] = field(default_factory=list)  # what the subject gives up, e.g. frames dropped (not the verdict)
    counterexample: Any = None  # the minimal example (JSON) for a reproduced / hang verdict
    replay: str | None = None  # a command that replays the counterexample
    reason: str | None = None  # why not_applicable / error
    evidence: dict[str, Any] = field(default_factory=dict)  # bug-specific detail (patterns, frames, tasks)
    notes: list[str] = field(default_factory=list)  # what a user should know, one line each (shown under tables)

    def __post_init__(self) -> None:
        _expect(self.verdict in VERDICTS, "verdict", self.verdict, f"is not one of {', '.join(VERDICTS)}")

    @property
    def failed(self) -> bool:
        return self.verdict in ("reproduced", "hang")

    @classmethod
    def from_json(cls, data: Any, where: str) -> Result:
        """One result of a report read back, checked field by field (see :meth:`CheckReport.from_json`)."""
        _expect(isinstance(data, dict), where, data, "is not a JSON object")
        fields = cls.__dataclass_fields__
        for name in data:
            _expect(name in fields, f"{where}.{name}", data[name], f"is an unknown field; the fields are {', '.join(fields)}")
        for name in ("bug", "verdict", "backend"):
            _expect(isinstance(data.get(name), str), f"{where}.{name}", data.get(name), "is not a name")
        for name in ("model", "coverage", "replay", "reason"):
            _expect(isinstance(data.get(name), (str, type(None))), f"{where}.{name}", data.get(name), "is not a string or null")
        for name in ("manifestations", "quiet", "tradeoffs", "notes"):
            _expect(_strings(data.get(name, [])), f"{where}.{name}", data.get(name), "is not a list of strings")
        examples = data.get("examples", 0)
        _expect(type(examples) is int and examples >= 0, f"{where}.examples", examples, "is not a whole number >= 0")
        evidence = data.get("evidence", {})
        _expect(isinstance(evidence, dict), f"{where}.evidence", evidence, "is not a JSON object")
        patterns = evidence.get("patterns") or {}  # what a comparison reads of the evidence (the rest is shown as it is)
        _expect(isinstance(patterns, dict) and all(isinstance(p, dict) and _strings(p.get("swept_manifestations", []))
                                                   for p in patterns.values()),
                f"{where}.evidence.patterns", patterns, "is not an object of patterns, each with its swept_manifestations")
        try:
            return cls(**data)
        except ValueError as exc:  # what the class itself checks
            raise ValueError(f"{where}.{exc}") from None

    @property
    def loud(self) -> list[str]:
        """Manifestations users see without turning warnings on (``hang`` among them)."""
        return [n for n in self.manifestations if n not in self.quiet]


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _expect(holds: bool, where: str, value: Any, problem: str) -> None:
    """Raise ValueError("WHERE: VALUE PROBLEM") unless ``holds``: one line, the value cut short."""
    if not holds:
        shown = repr(value)
        raise ValueError(f"{where}: {shown if len(shown) <= 60 else shown[:57] + '...'} {problem}")


@dataclass
class CheckReport:
    subject: dict[str, Any]
    seed: int
    results: list[Result] = field(default_factory=list)
    schema: str = SCHEMA
    #: where a ``matrix`` run placed this report (its slice, position, options), so slices merge
    matrix: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 nothing reproduced, 1 reproduced or hang, 2 the harness could not judge."""
        if any(r.failed for r in self.results):
            return 1
        if any(r.verdict == "error" for r in self.results):
            return 2
        return 0

    def to_json(self) -> dict[str, Any]:
        data = {"schema": self.schema, "subject": self.subject, "seed": self.seed, "results": [asdict(r) for r in self.results]}
        return {**data, "matrix": self.matrix} if self.matrix is not None else data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> CheckReport:
        """A report read back (``matrix --from-json``, a check in another env), checked field by
        field: ValueError names the first malformed one (after ``where``, its place in a list), so
        what is merged is this schema's report and renders as one."""
        at = f"{where}." if where else ""
        _expect(isinstance(data, dict), where or "report", data, "is not a JSON object (one check --json report, or a list of them)")
        schema = data.get("schema", SCHEMA)
        _expect(schema == SCHEMA, f"{at}schema", schema, f"is not {SCHEMA}, the one this harness reads; judge the subject again with it")
        unknown = sorted(set(data) - {"schema", "subject", "seed", "results", "matrix"})
        _expect(not unknown, where or "report", unknown, "are unknown fields; the fields are schema, subject, seed, results, matrix")
        subject, seed, results, matrix = (data.get(k) for k in ("subject", "seed", "results", "matrix"))
        _expect(isinstance(subject, dict), f"{at}subject", subject, "is not a JSON object")
        for name in ("sdk_version", "cli_version", "installed_from", "spec", "judged_as", "source", "env"):
            _expect(isinstance(subject.get(name), (str, type(None))), f"{at}subject.{name}", subject.get(name), "is not a string or null")
        runtime = subject.get("runtime") or {}
        _expect(isinstance(runtime, dict) and all(isinstance(v, (str, type(None))) for v in runtime.values()),
                f"{at}subject.runtime", runtime, "is not an object of versions, e.g. {\"anyio\": \"4.4.0\"}")
        _expect(type(seed) is int, f"{at}seed", seed, "is not a whole number")
        _expect(isinstance(results, list), f"{at}results", results, "is not a list of results")
        _expect(isinstance(matrix, (dict, type(None))), f"{at}matrix", matrix, "is not a JSON object or null")
        return cls(subject=subject, seed=seed, results=[Result.from_json(r, f"{at}results[{i}]") for i, r in enumerate(results)],
                   schema=schema, matrix=matrix)


def one_line(exc: BaseException, limit: int = 200, clean: Callable[[str], str] | None = None) -> str:
    """An exception as one readable line (the innermost of a group, its message's first line);
    ``clean`` (:func:`pytest_agentsdk.observe.scrub`, for a reason a report keeps) runs before it is
    cut to ``limit``, so an address cut in half is never left to differ between runs."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
    text = clean(text) if clean else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def subject_info(sdk_version: str | None, cli_version: str | None, installed_from: str | None = None, **extra: Any) -> dict[str, Any]:
    """Who was judged; ``installed_from`` (a candidate's source, :func:`pytest_agentsdk.compat.installed_from`)
    only when it did not come from a package index."""
    origin = {"installed_from": installed_from} if installed_from else {}
    return {"sdk_version": sdk_version, "cli_version": cli_version, **origin, "python": platform.python_version(), **extra}


#: What a verdict runs through besides the SDK: anyio's task groups and cancel scopes (the SDK is
#: built on them; bug 1 is theirs to raise), and trio, the second backend. A report names their
#: versions, as ``subject.runtime``, so two verdicts are known to be judged alike or not.
RUNTIME = ("anyio", "trio")


def runtime_versions() -> dict[str, str | None]:
    """The installed version of each :data:`RUNTIME` library, None where it is missing."""
    found: dict[str, str | None] = {}
    for name in RUNTIME:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def runtime_label(report: CheckReport) -> str:
    """``anyio 4.16.0, trio 0.35.0``; empty for a report that names no runtime (an error, an older harness)."""
    runtime = report.subject.get("runtime") or {}
    return ", ".join(f"{name} {runtime[name] or 'missing'}" for name in RUNTIME if name in runtime)


def runtime_groups(reports: list[CheckReport]) -> dict[str, list[str]]:
    """Runtime -> the subjects judged on it, when the reports were judged on more than one (a
    report naming none counts as "runtime unknown"); empty when they were judged alike. A report
    whose every row is an error never ran, and is left out."""
    groups: dict[str, list[str]] = {}
    for report in reports:
        if report.results and all(r.verdict == "error" for r in report.results):
            continue
        groups.setdefault(runtime_label(report) or "runtime unknown", []).append(subject_label(report))
    return groups if len(groups) > 1 else {}


def unlike_runtimes(reports: list[CheckReport]) -> str | None:
    """One line when the reports were judged on different runtimes (:func:`runtime_groups`): a
    change between them may be the runtime's, not the SDK's. None when they were judged alike."""
    groups = runtime_groups(reports)
    if not groups:
        return None
    ran = "; ".join(f"{label} ({', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''})"
                    for label, names in groups.items())
    if any(report.subject.get("env") for report in reports):
        remedy = "an env keeps the versions it was built with: remove one (subject.env in --json) to build it again on today's"
    else:
        remedy = "judge them in one run to compare them alike"
    return f"not judged alike: the subjects ran on {ran}; a change between them may be the runtime's; {remedy}"


# ---------------------------------------------------------------- renderers
def _detail(r: Result) -> str:
    """Manifestations (warnings-only ones marked), or the reason, or what a clean verdict covered."""
    parts = [n + (" (warning)" if n in r.quiet else "") for n in r.manifestations]
    detail = ", ".join(parts) or r.reason or r.coverage or ""
    return detail + (f"; drops {', '.join(r.tradeoffs)}" if r.tradeoffs else "")


def _row(r: Result) -> list[str]:
    return [r.bug, r.model or "-", r.backend, r.verdict, str(r.examples), _detail(r)]


def render_table(report: CheckReport) -> str:
    """A fixed-width terminal table, one row per result, then the replay commands."""
    head = ["bug", "model", "backend", "verdict", "examples", "manifestations / reason"]
    rows = [head] + [_row(r) for r in report.results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    lines = [f"claude-agent-sdk {report.subject.get('sdk_version')} (CLI {report.subject.get('cli_version') or 'none bundled'}){_on_runtime(report)}, seed {report.seed}"]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    for r in report.results:
        lines += [f"{r.bug}/{r.model or '-'}/{r.backend}: {note}" for note in r.notes]
    for r in report.results:
        if r.failed and r.replay:
            lines.append(f"replay {r.bug}/{r.model or '-'}/{r.backend}: {r.replay}")
    return "\n".join(lines)


def _on_runtime(report: CheckReport) -> str:
    return f" on {label}" if (label := runtime_label(report)) else ""


def render_markdown(report: CheckReport) -> str:
    """A Markdown table with the minimal counterexamples folded, for PR comments."""
    lines = [
        f"**claude-agent-sdk {report.subject.get('sdk_version')}** (CLI {report.subject.get('cli_version') or 'none bundled'}){_on_runtime(report)}, seed `{report.seed}`",
        "",
        "| bug | model | backend | verdict | examples | manifestations / reason |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in report.results]
    notes = [f"- **{r.bug} / {r.model or '-'} / {r.backend}**: {note}" for r in report.results for note in r.notes]
    if notes:
        lines += ["", *notes]
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


# ---------------------------------------------------------------- across subjects (matrix, verify)
_SHORT = {"not_applicable": "n/a"}


def classify_change(baseline: Result | None, candidate: Result | None, sides: tuple[str, str] = ("baseline", "candidate")) -> dict[str, Any]:
    """How ``candidate`` differs from ``baseline`` for one (bug, model, backend), judged by
    manifestation sets and severity, never by the verdict labels alone:

    ``regresses``: a new manifestation (a new ``hang`` included), or the candidate errors or lost
    the surface where the baseline ran; ``fixes``: the baseline showed something and the candidate
    shows nothing users see by default (warnings it leaves are listed); ``narrows``: some gone,
    none new; ``still reproduces``: the same set; ``unchanged``: clean on both sides, or neither ran;
    ``gains the surface``: the candidate runs where the baseline was ``not_applicable`` (e.g. a
    release that cannot run under trio, or has no typed task messages for bug 3's oracle), so
    there is nothing to compare its manifestations with (a candidate that hangs there regresses);
    ``error``: the baseline itself could not be judged (a harness failure, not the candidate's), or
    examples could not run on one side (:func:`_unlike_when_examples_could_not_run`).
    ``sides`` names the two in a reason (a matrix compares a release with the one before it, or a
    candidate with its release, and names them).
    """
    b_ran = baseline is not None and baseline.verdict in RAN
    c_ran = candidate is not None and candidate.verdict in RAN
    b_names = set(baseline.manifestations) if b_ran and baseline else set()
    c_names = set(candidate.manifestations) if c_ran and candidate else set()
    # nothing is gone from a candidate that did not run: the reason says what became of it
    row: dict[str, Any] = {"gone": sorted(b_names - c_names) if c_ran else [], "new": sorted(c_names - b_names), "reason": None,
                           **(_pattern_moves(baseline, candidate) if baseline and candidate and b_ran and c_ran else {})}
    if baseline is not None and baseline.verdict == "error":
        row.update(change="error", reason=f"{sides[0]}: {baseline.reason}")
    elif b_ran and not c_ran:
        why = candidate.reason if candidate else "no verdict"
        lost = "errors" if candidate is not None and candidate.verdict == "error" else "lacks the surface"
        row.update(change="regresses", reason=f"{sides[1]} {lost} where {sides[0]} ran: {why}")
    elif candidate is not None and candidate.verdict == "error":
        row.update(change="error", reason=f"{sides[1]}: {candidate.reason}")
    elif c_ran and baseline is not None and not b_ran:
        judged = f"{candidate.verdict}" + (f" ({', '.join(sorted(c_names))})" if c_names else "") if candidate else ""
        gained = f"{sides[1]} runs where {sides[0]} did not ({baseline.reason}); judged alone: {judged}"
        hangs = candidate is not None and candidate.verdict == "hang"  # a hang is a regression wherever it appears
        row.update(change="regresses" if hangs else GAINS, new=row["new"] if hangs else [], reason=gained)
    elif row["new"] or row.get("new_in_patterns"):
        row["change"] = "regresses"
    elif not b_names:
        row["change"] = "unchanged"
    elif not row["gone"] and not row.get("gone_in_patterns"):
        row["change"] = "still reproduces"
    elif candidate is not None and not candidate.loud and (baseline is not None and baseline.loud or not c_names):
        row["change"] = "fixes"
    else:
        row["change"] = "narrows"
    _unlike_when_examples_could_not_run(row, baseline, candidate, sides)
    row["warnings_left"] = sorted(candidate.quiet) if c_ran and candidate else []
    return row


def _unlike_when_examples_could_not_run(row: dict[str, Any], baseline: Result | None, candidate: Result | None,
                                        sides: tuple[str, str]) -> None:
    """Examples that could not run on one side (a real CLI's story: ``evidence.could_not_run``)
    leave the two unlike: what is gone may only not have run, and what is new may only have run
    on one side. The row is ``error``, saying so, but for what needs no like for like: a hang, a
    surface the candidate lost or gained, and a candidate's new manifestation against a baseline
    that ran everything (seen is seen)."""
    unrun = [(side, len(r.evidence.get("could_not_run") or [])) for side, r in zip(sides, (baseline, candidate)) if r is not None]
    unrun = [(side, n) for side, n in unrun if n]
    if not unrun or row["change"] in ("error", GAINS) or (candidate is not None and candidate.verdict in ("hang", "not_applicable")):
        return
    if row["change"] == "regresses" and (row["new"] or row.get("new_in_patterns")) and all(side == sides[1] for side, _ in unrun):
        return
    said = "; ".join(f"{side}: {n} example(s) could not run" for side, n in unrun)
    row.update(change="error", reason=f"{said} (evidence.could_not_run), so the two are not like for like")


def _pattern_moves(baseline: Result, candidate: Result) -> dict[str, dict[str, list[str]]]:
    """Per consumer pattern / named flow, what the sweep (the same examples on both sides; a row of
    trio's tie-breaks left out on a side would have run there as one that ran, ties.TieRuns) showed
    newly or no longer: a manifestation spreading to a pattern that was safe is a regression even
    when the union already had it. The sweep's examples only, never the search's: like for like,
    and the same at any budget (so it is said as "the sweep of" a pattern: the search may still
    find a manifestation gone from the sweep there).
    ``{"new_in_patterns": {name: [patterns]}, "gone_in_patterns": ...}``."""
    b_groups = baseline.evidence.get("patterns") or {}
    c_groups = candidate.evidence.get("patterns") or {}
    moves: dict[str, dict[str, list[str]]] = {"new_in_patterns": {}, "gone_in_patterns": {}}
    for group in [g for g in c_groups if g in b_groups]:
        b_swept = set(b_groups[group].get("swept_manifestations", []))
        c_swept = set(c_groups[group].get("swept_manifestations", []))
        for key, names in (("new_in_patterns", c_swept - b_swept), ("gone_in_patterns", b_swept - c_swept)):
            for name in sorted(names):
                moves[key].setdefault(name, []).append(group)
    return {k: v for k, v in moves.items() if v}


def compare(baseline: CheckReport, candidate: CheckReport, sides: tuple[str, str] = ("baseline", "candidate")) -> list[dict[str, Any]]:
    """One row per (bug, model, backend) judged on either side, in the candidate's report order
    (``sides``: see :func:`classify_change`)."""
    base, cand = _keyed(baseline, candidate), _keyed(candidate, baseline)
    return [_change_row(key, base.get(key), cand.get(key), sides) for key in list(cand) + [k for k in base if k not in cand]]


def _keyed(report: CheckReport, other: CheckReport) -> dict[tuple[str, str | None, str], Result]:
    """``report``'s results by (bug, model, backend); a subject that could not be judged has one
    error row per bug and backend, with no model: it stands for each model ``other`` judged there
    (the candidate errors on each; it did not lack them)."""
    keyed = {(r.bug, r.model, r.backend): r for r in report.results}
    for r in [r for r in report.results if r.verdict == "error" and r.model is None]:
        models = [key for key in ((x.bug, x.model, x.backend) for x in other.results) if key[::2] == (r.bug, r.backend) and key[1]]
        if models:
            keyed.pop((r.bug, None, r.backend), None)  # pop: a subject judged twice (--bug given twice) repeats its rows
            keyed.update(dict.fromkeys(models, r))
    return keyed


def _change_row(key: tuple[str, str | None, str], b: Result | None, c: Result | None, sides: tuple[str, str]) -> dict[str, Any]:
    return {
        "bug": key[0], "model": key[1], "backend": key[2],
        "baseline": b.verdict if b else None, "candidate": c.verdict if c else None,
        **classify_change(b, c, sides),
        "baseline_manifestations": b.manifestations if b else [], "candidate_manifestations": c.manifestations if c else [],
        "tradeoffs": c.tradeoffs if c else [], "coverage": c.coverage if c else None,
    }


def outcomes_across_seeds(reports: list[CheckReport]) -> dict[tuple[str, str | None, str], dict[tuple[str, tuple[str, ...]], list[int]]]:
    """Reports of one subject judged under different seeds, per (bug, model, backend): each
    distinct (verdict, manifestations) and the seeds that gave it. A verdict the budget or the
    seed can move shows as more than one entry (a flip)."""
    found: dict[tuple[str, str | None, str], dict[tuple[str, tuple[str, ...]], list[int]]] = {}
    for report in reports:
        for r in report.results:
            found.setdefault((r.bug, r.model, r.backend), {}).setdefault((r.verdict, tuple(sorted(r.manifestations))), []).append(report.seed)
    return found


def describe_change(row: dict[str, Any]) -> str:
    """The change with what moved, in one cell: ``fixes (gone: a, b; warnings left: w); drops x``."""
    shown = (("gone", "gone"), ("new", "new")) + ((("warnings left", "warnings_left"),) if row["change"] == "fixes" else ())
    parts = [f"{what}: {', '.join(row[key])}" for what, key in shown if row.get(key)]
    for what, key in (("new in the sweep of", "new_in_patterns"), ("gone from the sweep of", "gone_in_patterns")):
        if row.get(key) and (row["change"] == "regresses" or key == "gone_in_patterns" and row["change"] == "narrows"):
            spread = {name: groups for name, groups in row[key].items() if name not in row["gone"] + row["new"]}
            if spread:
                parts.append(f"{what}: " + "; ".join(f"{name} ({', '.join(groups)})" for name, groups in spread.items()))
    text = row["change"] + (f" ({'; '.join(parts)})" if parts else "")
    if row.get("tradeoffs"):
        text += f"; drops {', '.join(row['tradeoffs'])}"
    if row.get("reason") and row["change"] in ("regresses", "error", GAINS):
        text += f"; {row['reason']}"
    return text


def _fixed_width(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def _md_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(row) + " |" for row in rows[1:]]


def subject_label(report: CheckReport) -> str:
    spec, version = report.subject.get("spec"), report.subject.get("sdk_version")
    label = str(version) if spec in (None, version, f"pypi:{version}") else f"{spec} ({version})"
    return label + (f" / CLI {report.subject.get('cli_version')}" if report.subject.get("cli") else "")


def _matrix_cells(report: CheckReport, columns: list[tuple[str, str | None]], reasons: list[str]) -> list[str]:
    """One cell per column; an ``error`` cell points at its reason in ``reasons`` (``error [1]``)."""

    def label(r: Result) -> str:
        if r.verdict != "error":
            return _SHORT.get(r.verdict, r.verdict)
        reason = r.reason or "no reason recorded"
        if reason not in reasons:
            reasons.append(reason)
        return f"error [{reasons.index(reason) + 1}]"

    cells = []
    for bug, model in columns:
        results = [r for r in report.results if (r.bug, r.model) == (bug, model)]
        labels = [label(r) for r in results]
        if not results:
            cells.append("-")
        elif len(set(labels)) == 1:
            cells.append(labels[0])
        else:
            cells.append(" ".join(f"{r.backend}:{text}" for r, text in zip(results, labels)))
    return cells


def render_matrix(reports: list[CheckReport], markdown: bool = False) -> str:
    """Subject x bug (x model) table; a cell names the backend only where backends disagree."""
    columns: list[tuple[str, str | None]] = []
    for report in reports:
        for r in report.results:
            if (r.bug, r.model) not in columns:
                columns.append((r.bug, r.model))
    head = ["claude-agent-sdk"] + [bug + (f" [{model}]" if model else "") for bug, model in columns]
    reasons: list[str] = []
    rows = [[subject_label(rep)] + _matrix_cells(rep, columns, reasons) for rep in reports]
    seeds = sorted({rep.seed for rep in reports})
    footer = f"seed {', '.join(map(str, seeds))}; n/a = release lacks the surface or backend (see --json for reasons)"
    if len(seeds) > 1:  # reports recorded by separate runs (tox's envs): what only a search found may be its seed's
        footer += "; judged under different seeds: a change the sweep does not show may be the seed's (judge them with one --seed)"
    if taken := sum(1 for rep in reports if rep.subject.get("judged_as")):
        fingerprinted = [rep.subject["source"] for rep in reports if rep.subject.get("source")]
        footer += (f"; {len(fingerprinted)} releases from {len(set(fingerprinted))} Python sources: {taken} took the rows of the newest "
                   f"release of their source, not judged again (judged_as in --json)")
    if unlike := unlike_runtimes(reports):
        footer += f"; {unlike}"
    sections = [("errors", [f"[{i}] {reason}" for i, reason in enumerate(reasons, 1)]),
                ("manifestations", _manifestation_lines(reports)), ("changes (each release against the one before it, each candidate against its base release)", _flip_lines(reports))]
    lines = _md_table([head] + rows) + ["", f"_{footer}_"] if markdown else _fixed_width([head] + rows) + [footer]
    for title, found in sections:
        if found:
            lines += ["", f"{title.capitalize()}:", ""] + [f"- {line}" for line in found] if markdown else [f"{title}:"] + [f"  {line}" for line in found]
    return "\n".join(lines)


def is_candidate(report: CheckReport) -> bool:
    """The subject is no published release: it was installed from a source tree, a file or a git
    URL, or its version carries a local label (``0.2.187+fix``), which no index publishes."""
    if report.subject.get("installed_from"):
        return True
    try:
        return Version(str(report.subject.get("sdk_version"))).local is not None
    except InvalidVersion:
        return False


def _flip_lines(reports: list[CheckReport]) -> list[str]:
    """Where a release differs from the release before it, and a candidate from the release it is
    built on (the one its public version names), over the same CLI, by manifestations and severity.
    A candidate is never a step in the releases' chain (the release after it did not lose its fix),
    nor is a row that errored: it is said (it errors where the release before it ran: the SDK or
    the harness broke there), and per bug, model and backend the next release is compared with the
    last one judged, so neither hides a change."""
    # in release order, whatever order the subjects were given in (a version that reads as none goes first: its rows errored)
    releases = sorted((r for r in reports if not is_candidate(r)), key=lambda r: Version(_public(r) or "0"))
    chains: dict[str | None, list[CheckReport]] = {}
    for report in releases:
        chains.setdefault(_real_cli(report), []).append(report)
    lines = []
    for chain in chains.values():
        last: dict[tuple[str, str | None, str], tuple[CheckReport, Result]] = {}
        for report in chain:
            for result in report.results:
                key = (result.bug, result.model, result.backend)
                if key in last:
                    before, was = last[key]
                    lines += _change_lines(before, report, [_change_row(key, was, result, (subject_label(before), subject_label(report)))])
                if result.verdict != "error":  # an error is said (it errors where the one before ran), then stepped over
                    last[key] = (report, result)
    for candidate in (r for r in reports if is_candidate(r)):
        named = _public(candidate)
        base = next((r for r in releases if named is not None and _public(r) == named and _real_cli(r) == _real_cli(candidate)), None)
        if base is not None:
            lines += _change_lines(base, candidate, compare(base, candidate, (subject_label(base), subject_label(candidate))))
            continue
        if candidate.subject.get("sdk_version") is None:
            lines.append(f"{subject_label(candidate)}: not compared: its version is unknown (it was not judged: see its error)")
            continue
        cli = _real_cli(candidate)
        why = (f"no release {named}{f' over CLI {cli}' if cli else ''} in the table" if named
               else f"its version {candidate.subject['sdk_version']} names no release")
        lines.append(f"{subject_label(candidate)}: not compared: {why}; verify --candidate {_candidate_arg(candidate)}"
                     f"{f' --cli {cli}' if cli else ''} judges it beside the release its version names")
    return lines


def release_named(version: Any) -> str | None:
    """The release a version names: its public part (``0.2.187+fix`` names 0.2.187, as a candidate
    built on that release carries it); None for no version or one that is not a version."""
    if version is None:
        return None
    try:
        return Version(str(version)).public
    except InvalidVersion:
        return None


def _public(report: CheckReport) -> str | None:
    return release_named(report.subject.get("sdk_version"))


def _change_lines(before: CheckReport, after: CheckReport, rows: list[dict[str, Any]]) -> list[str]:
    return [f"{subject_label(before)} -> {subject_label(after)}  {row['bug']}/{row['model'] or '-'}/{row['backend']}: {describe_change(row)}"
            for row in rows if row["change"] not in ("unchanged", "still reproduces")]


def _real_cli(report: CheckReport) -> str | None:
    """The real CLI a subject was judged over (None: the scripted CLI), which its rows depend on as much as on the SDK."""
    return str(report.subject.get("cli_version")) if report.subject.get("cli") else None


def _candidate_arg(report: CheckReport) -> str:
    """How ``verify --candidate`` names the subject, quoted to paste: the path or git URL it came
    from (a report's spec may be a tox env's name, which is no subject)."""
    origin = str(report.subject.get("installed_from") or "")
    return shlex.quote(str(Path(unquote(urlparse(origin).path))) if origin.startswith("file://") else origin) if origin else "CANDIDATE"


def _manifestation_lines(reports: list[CheckReport]) -> list[str]:
    """What each subject showed per bug (all backends): a verdict can stay ``reproduced`` across
    releases while what users suffer changes, and this is where that flip is visible."""
    lines = []
    for report in reports:
        shown: dict[str, set[str]] = {}
        for r in report.results:
            if r.manifestations:
                shown.setdefault(r.bug + (f" [{r.model}]" if r.model else ""), set()).update(r.manifestations)
        lines += [f"{subject_label(report)}  {bug}: {', '.join(sorted(names))}" for bug, names in shown.items()]
    return lines


def render_comparison(baseline: CheckReport, candidate: CheckReport, markdown: bool = False) -> str:
    """Candidate vs baseline per (bug, model, backend); Markdown adds the candidate's own report
    (minimal counterexamples and replay commands), for a PR comment."""
    rows = compare(baseline, candidate)
    title = f"candidate {subject_label(candidate)} vs baseline {subject_label(baseline)}, seed {candidate.seed}"
    head = ["bug", "model", "backend", "baseline", "candidate", "change"]
    table = [[r["bug"], r["model"] or "-", r["backend"], r["baseline"] or "-", r["candidate"] or "-", describe_change(r)] for r in rows]
    unlike = unlike_runtimes([baseline, candidate])
    if not markdown:
        lines = [title] + _fixed_width([head] + table) + ([unlike] if unlike else [])
        lines += [f"replay {r.bug}/{r.model or '-'}/{r.backend} (candidate): {r.replay}" for r in candidate.results if r.failed and r.replay]
        return "\n".join(lines)
    lines = [f"**pytest-agentsdk verify**: candidate `{subject_label(candidate)}` vs baseline `{subject_label(baseline)}`, seed `{candidate.seed}`", ""]
    lines += _md_table([head] + [row[:5] + [f"**{row[5]}**" if r["change"] in ("fixes", "regresses") else row[5]] for row, r in zip(table, rows)])
    if unlike:
        lines += ["", f"**{unlike[0].upper()}{unlike[1:]}**"]
    covered = [f"- {r['bug']} / {r['model'] or '-'} / {r['backend']}: {r['coverage']}" for r in rows if r["change"] == "fixes" and r["coverage"]]
    if covered:
        lines += ["", "Covered by each `fixes`:", "", *covered]
    # the candidate's own report: its minimal counterexamples, folded, with their replay commands
    lines += ["", "Candidate's verdicts (replay in an env with the candidate installed):", "", render_markdown(candidate)]
    return "\n".join(lines)
