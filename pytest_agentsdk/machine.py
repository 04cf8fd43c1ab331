"""The verdict machine: ``matrix``, ``verify`` and ``bisect`` run ``check`` in isolated envs
(:mod:`pytest_agentsdk.envs`) and compare what comes back.

Every subject of one command is judged with the same seed, so differences between subjects are
differences between SDKs, not between random draws.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from . import envs, forked, interrupt, options, preload, verdict
from .bugs import BUG_NAMES, available, model_problem

#: Env builds run at once, beside the checks (see :func:`judge_all`).
BUILDS_AT_ONCE = 4
#: What ``matrix`` judges without ``--sdk``/``--since``/``--all``: the releases the issues name.
DEFAULT_SUBJECTS = ("0.1.44", "0.1.48", "0.1.50", "0.1.51", "0.1.60", "0.1.71", "0.2.87", "0.2.143", "latest")


class _Progress:
    """Thread-safe progress lines on stderr, prefixed with the subject they are about."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        if not self.quiet:
            with self.lock:
                # one write, line and newline together: Ctrl-C silences stderr between two writes
                # (pytest_agentsdk.interrupt), and its last line must start a line of its own
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def for_subject(self, label: str) -> Callable[[str], None]:
        return lambda line: self(f"[{label}] {line.strip()}")


# ---------------------------------------------------------------- judging one subject
def share_of_cores(at_once: int) -> int:
    """``--jobs`` for each of ``at_once`` checks running side by side: a check runs its own rows in
    parallel too, so together they stay within the cores this process may use."""
    return max(1, forked.default_jobs() // at_once)


class _Shares:
    """Each check's ``--jobs``, given as it starts: the cores split among the checks that can still
    run beside it (at most ``at_once``), so the last checks of a run get the cores the finished ones
    left instead of one each (``--jobs`` never changes a report)."""

    def __init__(self, at_once: int, total: int) -> None:
        self.at_once, self.left = at_once, total
        self.lock = threading.Lock()

    def take(self) -> int:
        with self.lock:
            share = share_of_cores(max(1, min(self.at_once, self.left)))
            self.left -= 1
            return share

    def drop(self, count: int) -> None:
        """``count`` checks will never start (their env did not build)."""
        with self.lock:
            self.left -= count


def _check_args(args: argparse.Namespace, seed: int, cli: Any, check_jobs: int) -> list[str]:
    """The ``check`` options every env gets; with ``cli`` (a resolved
    :class:`~pytest_agentsdk.realcli.Cli`) the env judges over that real CLI. ``check_jobs`` is the
    check's own share of the cores (its rows run in parallel too): the envs judged at once times it
    stays within the cores. ``--jobs`` does not change a report, so it is not a judging option."""
    return ["--seed", str(seed), "--jobs", str(check_jobs)] + (["--cli", str(cli.path)] if cli else []) + _judging_options(args)


def _judging_options(args: argparse.Namespace) -> list[str]:
    """What to judge and how hard, as ``check`` options: the same for every subject of a run."""
    out = ["--examples", str(args.examples)]
    for bug in args.bug or []:
        out += ["--bug", bug]
    for backend in args.backend or []:
        out += ["--backend", backend]
    for model in args.models or []:
        out += ["--model", model]
    if args.warnings_as_errors:
        out.append("--warnings-as-errors")
    return out


def _error_report(spec: envs.Spec, version: str | None, reason: str, args: argparse.Namespace, seed: int) -> verdict.CheckReport:
    """An ``error`` verdict for every selected bug/backend, without building anything."""
    report = verdict.CheckReport({**verdict.subject_info(version, None, spec.installed_from), "spec": spec.text}, seed)
    for bug in args.bug or available():
        for backend in args.backend or options.BACKENDS:
            report.results.append(verdict.Result(bug, "error", backend, None, reason=reason))
    return report


def _prepare(spec: envs.Spec, args: argparse.Namespace, seed: int, progress: _Progress,
             preloaders: preload.Preloaders | None = None) -> envs.Env | verdict.CheckReport:
    """The env ``spec`` is judged in, built (its import probe forked from ``preloaders``) or reused,
    or the ``error`` report it gets instead (unsupported, or a candidate that does not build)."""
    if spec.kind == "pypi" and (reason := envs.unsupported_reason(spec.value)):
        return _error_report(spec, spec.value, reason, args, seed)
    say = progress.for_subject(spec.label)
    try:
        env = envs.ensure_env(spec, progress=say, preloaders=preloaders)
    except envs.EnvError as exc:
        if spec.kind in ("pypi", "latest"):  # a release that will not build: the index or the harness, not an SDK change
            raise
        say(str(exc))  # a candidate that does not build or import: its rows are errors, verify calls that a regression
        return _error_report(spec, None, str(exc), args, seed)
    if reason := envs.unsupported_reason(env.sdk_version):
        return _error_report(spec, env.sdk_version, reason, args, seed)
    return env


def _check_in(env: envs.Env, args: argparse.Namespace, seed: int, progress: _Progress, cli: Any, check_jobs: int,
              preloaders: preload.Preloaders | None) -> verdict.CheckReport:
    """Run ``check`` in ``env`` (over the real ``cli``, if given) on ``check_jobs`` cores, forked
    from the server of its dependency set when ``preloaders`` has one (scripted checks only: a real
    CLI's session is cleaned up by the process that opened it)."""
    spec = env.spec
    say = progress.for_subject(spec.label + (f" / CLI {cli.version}" if cli else ""))
    say(f"checking claude-agent-sdk {env.sdk_version} ({'cached env' if env.reused else 'new env'})")
    try:
        data = env.run_check(_check_args(args, seed, cli, check_jobs), progress=say, preloaders=None if cli else preloaders)
        try:
            report = verdict.CheckReport.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise envs.EnvError(f"{spec.label}: check printed JSON this harness cannot read ({type(exc).__name__}: {exc})") from None
    except envs.EnvError as exc:  # the env is fine but check gave no verdict: one error row, the sweep goes on
        say(str(exc))
        return _error_report(spec, env.sdk_version, str(exc), args, seed)
    report.subject.update(spec=spec.text, env=str(env.path), env_reused=env.reused)
    report.subject.pop("installed_from", None)  # what the spec says, not the env (see Spec.installed_from)
    if spec.installed_from:
        report.subject["installed_from"] = spec.installed_from
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    say("done: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return report


def _judged(prepared: envs.Env | verdict.CheckReport, args: argparse.Namespace, seed: int, progress: _Progress,
            cli: Any = None, check_jobs: int | None = None, preloaders: preload.Preloaders | None = None) -> verdict.CheckReport:
    """The report of a prepared subject: its error report, or what ``check`` says in its env (on
    ``check_jobs`` cores, by default all of them)."""
    if isinstance(prepared, verdict.CheckReport):
        return prepared
    return _check_in(prepared, args, seed, progress, cli, check_jobs or share_of_cores(1), preloaders)


def judge(spec: envs.Spec, args: argparse.Namespace, seed: int, progress: _Progress, cli: Any = None,
          check_jobs: int | None = None, preloaders: preload.Preloaders | None = None) -> verdict.CheckReport:
    """Build (or reuse) the env for ``spec`` and run ``check`` in it (over the real ``cli``, if given;
    on ``check_jobs`` cores, by default all: a caller judging several at once gives each its share)."""
    return _judged(_prepare(spec, args, seed, progress, preloaders), args, seed, progress, cli, check_jobs, preloaders)


def judge_all(specs: list[envs.Spec], args: argparse.Namespace, seed: int, progress: _Progress,
              clis: list[Any] | None = None) -> list[verdict.CheckReport]:
    """Judge every subject (each over every real CLI in ``clis``, when given); reports in ``specs``
    (then ``clis``) order.

    Checks run in parallel bounded by the cores (``--jobs``); env builds run beside them in a pool
    of their own (:data:`BUILDS_AT_ONCE`: they wait on the index and uv more than on the cores), so
    a subject is judged as soon as its env is ready and a cold matrix overlaps building with judging.
    A bad subject does not stop the others (their envs land in the cache); its EnvError is raised
    once all are done.
    """
    jobs = max(1, min(args.jobs or forked.default_jobs(), len(specs) * len(clis or [None])))
    shares = _Shares(jobs, len(specs) * len(clis or [None]))
    checks: dict[tuple[int, int], Future[verdict.CheckReport]] = {}
    errors: dict[int, BaseException] = {}

    def judged(prepared: envs.Env | verdict.CheckReport, cli: Any) -> verdict.CheckReport:
        return _judged(prepared, args, seed, progress, cli, shares.take(), preloaders)

    with preloaded() as preloaders, ThreadPoolExecutor(max_workers=jobs) as checkers, \
            ThreadPoolExecutor(max_workers=min(BUILDS_AT_ONCE, len(specs) or 1)) as builders:
        builds = {builders.submit(_prepare, spec, args, seed, progress, preloaders): i for i, spec in enumerate(specs)}
        for done in interrupt.as_completed(builds):
            if (exc := done.exception()) is not None:
                errors[builds[done]] = exc
                shares.drop(len(clis or [None]))
                continue
            for j, cli in enumerate(clis or [None]):
                checks[(builds[done], j)] = checkers.submit(judged, done.result(), cli)
        interrupt.wait(checks.values())
    if errors:
        raise errors[min(errors)]  # the first bad subject in the order given
    return [checks[key].result() for key in sorted(checks)]


def _compared_sources(specs: list[envs.Spec], args: argparse.Namespace, progress: _Progress,
                      clis: list[Any] | None) -> dict[int, tuple[str, str]]:
    """Position -> (release, source fingerprint) of the release subjects ``matrix`` compares by
    source (:mod:`pytest_agentsdk.sources`): none with ``--judge-each``, over a real CLI (which is
    told the SDK's version), or with fewer than two supported releases to compare."""
    if args.judge_each or clis:
        return {}
    # a pypi subject's version was checked against the release list when it was parsed: only latest needs the list
    versions = {i: spec.value if spec.kind == "pypi" else envs.release_version(spec, progress)
                for i, spec in enumerate(specs) if spec.kind in ("pypi", "latest")}
    versions = {i: v for i, v in versions.items() if envs.unsupported_reason(v) is None}
    if len(versions) < 2:
        return {}
    from . import sources  # here, not at the top: a check in an env never compares sources (nor loads a TOML parser)

    prints = sources.fingerprints(list(versions.values()), progress)
    return {i: (v, prints[v]) for i, v in versions.items() if v in prints}


def _judge_distinct(specs: list[envs.Spec], compared: dict[int, tuple[str, str]], args: argparse.Namespace, seed: int,
                    progress: _Progress, clis: list[Any] | None) -> list[verdict.CheckReport]:
    """:func:`judge_all`, judging the releases of one source (``compared``: position -> (release,
    fingerprint)) once: the others take the rows of its newest release, marked ``judged_as``. The
    newest, so a release published today is judged on today's dependencies (its env is new) rather
    than taking the rows of an older release's env. The releases of a source whose judgement gave
    an error row are judged again, each in its own env."""
    newest: dict[str, int] = {}
    for i, (version, fingerprint) in compared.items():  # ties (latest and its version): the first given
        if fingerprint not in newest or Version(version) > Version(compared[newest[fingerprint]][0]):
            newest[fingerprint] = i
    judged_as = {i: newest[fingerprint] for i, (_, fingerprint) in compared.items()}
    alone = [i for i in range(len(specs)) if judged_as.get(i, i) == i]
    if len(alone) < len(specs):
        progress(f"{len(specs) - len(alone)} of {len(compared)} releases have the Python source of a newer one (the same sdist "
                 "but for version strings): each source is judged once, on its newest release (--judge-each: every release in its own env)")
    reports = dict(zip(alone, judge_all([specs[i] for i in alone], args, seed, progress, clis)))
    erred = {i for i in alone if any(r.verdict == "error" for r in reports[i].results)}
    again = [i for i, judge in judged_as.items() if judge != i and judge in erred]
    reports.update(zip(again, judge_all([specs[i] for i in again], args, seed, progress, clis) if again else []))
    for i, judge in judged_as.items():
        version, fingerprint = compared[i]
        if i not in reports:
            reports[i] = verdict.CheckReport.from_json(copy.deepcopy(reports[judge].to_json()))
            reports[i].subject.update(spec=specs[i].text, sdk_version=version, judged_as=reports[judge].subject.get("sdk_version"))
            progress.for_subject(specs[i].label)(f"same source as {reports[i].subject['judged_as']}: takes its rows, not judged again")
        reports[i].subject["source"] = fingerprint[:16]
    return [reports[i] for i in range(len(specs))]


@contextmanager
def preloaded() -> Iterator[preload.Preloaders | None]:
    """The preloading servers of one command (:mod:`pytest_agentsdk.preload`), stopped when it
    ends; None with ``PYTEST_AGENTSDK_PRELOAD=0`` (or false/no/off: every check then starts its own
    interpreter)."""
    if os.environ.get("PYTEST_AGENTSDK_PRELOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        yield None
        return
    with preload.Preloaders() as preloaders:
        yield preloaders


# ---------------------------------------------------------------- commands
def _parse_specs(texts: list[str], progress: _Progress, option: str) -> list[envs.Spec]:
    """Parse every subject and check named releases and git refs exist, before anything is built;
    an EnvError about a subject names ``option``, the one that gave it."""
    specs, seen = [], set()
    for text in texts:
        if text not in seen:
            seen.add(text)
            try:
                spec = envs.parse_spec(text)
                if spec.kind in ("pypi", "latest"):
                    envs.release_version(spec, progress)
                elif spec.kind == "git":
                    envs.git_commit(spec)
            except envs.EnvError as exc:
                if not str(exc).startswith(f"{text}:"):  # not about the subject: the index cannot be read, say
                    raise
                raise envs.EnvError(f"{option} {exc}") from None
            specs.append(spec)
    return specs


def _validate(args: argparse.Namespace) -> None:
    """Check the options shared with ``check``, before any subject is looked at."""
    for bug in args.bug or []:
        if bug not in BUG_NAMES:
            raise envs.EnvError(f"--bug {bug}: unknown bug; choose from {', '.join(BUG_NAMES)}")
        if bug not in available():
            raise envs.EnvError(f"--bug {bug}: this build of pytest-agentsdk does not ship that scenario yet")
    if problem := model_problem(args.bug or available(), getattr(args, "models", None)):
        raise envs.EnvError(problem)
    if getattr(args, "models", None) and getattr(args, "cli", None):
        raise envs.EnvError(options.MODEL_WITH_CLI)


def _seed(args: argparse.Namespace) -> int:
    """The one seed of this command (printed, so any run can be repeated)."""
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    if not args.quiet:
        print(f"pytest-agentsdk {args.command}: seed {seed}", file=sys.stderr)
    return int(seed)


def _release(text: str, option: str, progress: _Progress) -> Version:
    """A release named by an option; EnvError (naming the option) when the index lacks it."""
    try:
        return Version(envs.release_version(envs.parse_spec(f"pypi:{text.removeprefix('pypi:')}"), progress))
    except envs.EnvError as exc:
        raise envs.EnvError(f"{option} {exc}") from None


def _sort_version(text: Any) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        return Version("0")


def _load_reports(paths: list[str]) -> list[verdict.CheckReport]:
    """Check JSON recorded elsewhere: files, or directories of ``*.json`` by name. ``matrix --json``
    slices (``--shard``) merge into the run they are slices of, in its order; other check results
    (``tox`` envs) are sorted by release."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise envs.EnvError(f"--from-json {text}: no such file or directory")
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    loaded: list[tuple[Path, verdict.CheckReport, _Placement | None]] = []
    for file in files:
        try:
            text = file.read_text()
            if not text.strip():
                raise envs.EnvError(f"{file}: empty; a slice or check whose run did not finish (judge it again)")
            data = json.loads(text)
        except OSError as exc:
            raise envs.EnvError(f"--from-json {file}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise envs.EnvError(f"{file}: not check --json output ({type(exc).__name__}: {exc})") from None
        try:
            many = isinstance(data, list)  # matrix --json writes a list of reports, check --json one
            placed = [_known_report(d, f"[{i}]" if many else "") for i, d in enumerate(data if many else [data])]
        except ValueError as exc:
            raise envs.EnvError(f"{file}: not check --json output: {exc}") from None
        for report, placement in placed:
            report.subject.setdefault("spec", file.stem)  # tox's env name: tells a candidate from its release
            loaded.append((file, report, placement))
    if not loaded:
        raise envs.EnvError(f"--from-json {' '.join(paths)}: no check results found")
    if any(placement is not None for _, _, placement in loaded):
        return _merge_slices(loaded)
    # a candidate after the release it is built on, whatever the names of the files
    return sorted((r for _, r, _ in loaded),
                  key=lambda r: (_sort_version(r.subject.get("sdk_version")), verdict.is_candidate(r), str(r.subject.get("spec"))))


def _known_report(data: Any, where: str) -> tuple[verdict.CheckReport, _Placement | None]:
    """The check report ``data`` holds and where a matrix run placed it, when it is one and each
    result names a bug and backend this harness judges (else ValueError naming the field, after
    ``where``, its place in a list: a stray bug would be a column of its own)."""
    report = verdict.CheckReport.from_json(data, where)
    at = f"{where}." if where else ""
    for i, result in enumerate(report.results):
        if result.bug not in BUG_NAMES:
            raise ValueError(f"{at}results[{i}].bug: {result.bug!r} is not a bug this harness judges ({', '.join(BUG_NAMES)})")
        if result.backend not in options.BACKENDS:
            raise ValueError(f"{at}results[{i}].backend: {result.backend!r} is not one of {', '.join(options.BACKENDS)}")
    try:
        return report, _Placement.of(report) if report.matrix is not None else None
    except ValueError as exc:
        raise ValueError(f"{at}{exc}") from None


@dataclass(frozen=True)
class _Placement:
    """Where a ``matrix`` run put a report: slice ``shard`` of ``shards``, position ``index`` of
    the run's ``subjects`` reports, ``run`` the digest of its subject list, judged with ``options``."""

    shard: int
    shards: int
    index: int
    subjects: int
    run: str
    options: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"shard": f"{self.shard}/{self.shards}", "index": self.index, "subjects": self.subjects, "run": self.run,
                "options": list(self.options)}

    @classmethod
    def of(cls, report: verdict.CheckReport) -> _Placement:
        """The report's placement; ValueError naming the field when it is malformed."""
        data = report.matrix or {}
        try:
            shard, shards = options.shard(str(data.get("shard")))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"matrix.shard: {exc}") from None
        index, subjects, run, judged_with = (data.get(k) for k in ("index", "subjects", "run", "options"))
        if type(subjects) is not int or subjects < 1:
            raise ValueError(f"matrix.subjects: {subjects!r} is not a whole number >= 1")
        if type(index) is not int or not 0 <= index < subjects:
            raise ValueError(f"matrix.index: {index!r} is not a whole number in 0..{subjects - 1}")
        if not isinstance(run, str) or not isinstance(judged_with, list) or not all(isinstance(o, str) for o in judged_with):
            raise ValueError("matrix.run / matrix.options: not the run digest and option list matrix --json writes")
        return cls(shard, shards, index, subjects, run, tuple(judged_with))


def _digest(texts: list[str]) -> str:
    return hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]


def _merge_slices(loaded: list[tuple[Path, verdict.CheckReport, _Placement | None]]) -> list[verdict.CheckReport]:
    """The reports of one ``matrix`` run put back together from its slices, in the run's order;
    EnvError when they are not exactly the slices of one run (mixed runs, overlaps, gaps)."""
    placed: list[tuple[Path, verdict.CheckReport, _Placement]] = []
    for file, report, placement in loaded:
        if placement is None:
            raise envs.EnvError(f"--from-json: {file} holds check results that are not from a matrix run; merge matrix --json slices alone")
        placed.append((file, report, placement))
    first_file, first, base = placed[0]
    by_index: dict[int, tuple[Path, verdict.CheckReport]] = {}
    for file, report, placement in placed:
        for what, mine, theirs in (("seed", report.seed, first.seed), ("judging options", " ".join(placement.options), " ".join(base.options)),
                                   ("slices", placement.shards, base.shards), ("subjects", placement.subjects, base.subjects),
                                   ("subject lists or the sources compared", placement.run, base.run)):
            if mine != theirs:
                raise envs.EnvError(f"--from-json: {file} and {first_file} are slices of different runs ({what}: {mine} vs {theirs})")
        if placement.index in by_index:
            raise envs.EnvError(f"--from-json: overlapping slices: {verdict.subject_label(report)} is in both {by_index[placement.index][0]} and {file}")
        by_index[placement.index] = (file, report)
    if len(by_index) < base.subjects:
        given = sorted({placement.shard for _, _, placement in placed})
        raise envs.EnvError(f"--from-json: {base.subjects - len(by_index)} of {base.subjects} subjects missing: slices given "
                            f"{', '.join(f'{i}/{base.shards}' for i in given)} (give every slice 1/{base.shards} ... {base.shards}/{base.shards})")
    return [by_index[i][1] for i in sorted(by_index)]


def _slice(specs: list[envs.Spec], shard: tuple[int, int], sources_of: dict[int, str] | None = None) -> list[int]:
    """Positions (in ``specs``) of slice I of N: round-robin over the subjects sorted by release
    (then by spec), so a slice keeps its subjects when newer releases join the list. Subjects of
    one source (``sources_of``: position -> fingerprint) go together, with the oldest of them, so
    each source is judged in one slice only."""

    def key(i: int) -> tuple[int, Version, str]:
        spec = specs[i]
        return (0, Version(spec.value), "") if spec.kind == "pypi" else (1, Version("0"), spec.text)

    sources_of = sources_of or {}
    by_release = sorted(range(len(specs)), key=key)
    leads: dict[str, int] = {}
    for j in by_release:
        if j in sources_of:
            leads.setdefault(sources_of[j], j)
    turns = [j for j in by_release if j not in sources_of or leads[sources_of[j]] == j]
    i, n = shard
    taken = set(turns[i - 1::n])
    return [j for j in range(len(specs)) if (leads[sources_of[j]] if j in sources_of else j) in taken]


def cmd_matrix(args: argparse.Namespace) -> int:
    if args.from_json:
        judging = (("--shard", args.shard), ("--judge-each", args.judge_each), ("--seed", args.seed), ("--sdk", args.sdk),
                   ("--all", args.all), ("--since", args.since), ("--bug", args.bug), ("--backend", args.backend),
                   ("--model", args.models), ("--cli", args.cli), ("--warnings-as-errors", args.warnings_as_errors))
        # each would be ignored: the reports say how they were judged (--examples has a default, so it cannot be told given)
        if given := next((flag for flag, value in judging if value is not None and value is not False), None):  # --seed 0 is given
            raise envs.EnvError(f"{given}: --from-json merges slices already judged; give {given} to the runs that judge them")
        reports = _load_reports(args.from_json)
    else:
        specs, args, seed, progress = _matrix_subjects(args)
        real_clis = _clis(args, progress)
        clis = real_clis or [None]
        shard, shards = args.shard or (1, 1)
        compared = _compared_sources(specs, args, progress, real_clis)
        sources_of = {i: fingerprint for i, (_, fingerprint) in compared.items()}
        mine = _slice(specs, (shard, shards), sources_of)
        reports = _judge_distinct([specs[i] for i in mine], {n: compared[i] for n, i in enumerate(mine) if i in compared}, args, seed,
                                  progress, real_clis)
        # the sources compared shape the slices: slices that compared differently (one could not fetch an sdist) do not merge
        run = [spec.text for spec in specs] + [str(cli.path) for cli in clis if cli]
        run += [sources_of.get(i, "") for i in range(len(specs))] if sources_of else []
        for n, report in enumerate(reports):
            position = mine[n // len(clis)] * len(clis) + n % len(clis)
            report.matrix = _Placement(shard, shards, position, len(specs) * len(clis), _digest(run),
                                       tuple(_judging_options(args) + (["--judge-each"] if args.judge_each else []))).to_json()
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2, default=str))
    else:
        print(verdict.render_matrix(reports, markdown=args.markdown))
    failed = {str(r.subject.get("spec") or r.subject.get("sdk_version")): r.results[0].reason for r in reports
              if r.results and all(x.verdict == "error" for x in r.results)}
    if failed:  # nothing judged there: say why on stderr too, where the exit status is read
        print(f"pytest-agentsdk: error: no verdicts for {', '.join(failed)}: {'; '.join(dict.fromkeys(map(str, failed.values())))}",
              file=sys.stderr)
    return max((r.exit_code for r in reports), key=[0, 2, 1].index, default=0)


def _clis(args: argparse.Namespace, progress: _Progress) -> list[Any] | None:
    """The real CLIs ``--cli`` names, resolved (installed from npm) once, before any env runs."""
    specs = args.cli if isinstance(args.cli, list) else [args.cli] if args.cli else []
    if not specs:
        return None  # and Hypothesis, which the real CLI's stories import, stays out of this process (0.45 s)
    from . import realcli

    try:
        return [realcli.resolve(spec, progress=progress) for spec in dict.fromkeys(specs)] or None
    except realcli.CliError as exc:
        raise envs.EnvError(str(exc)) from None


def _matrix_subjects(args: argparse.Namespace) -> tuple[list[envs.Spec], argparse.Namespace, int, _Progress]:
    _validate(args)
    progress = _Progress(args.quiet)
    texts = list(args.sdk or [])
    if args.cli and not (texts or args.all or args.since):
        texts = ["latest"]  # a CLI-version x bug table: the SDK is held fixed
    if args.all or args.since:
        since = max(_release(args.since, "--since", progress), envs.MIN_SUPPORTED) if args.since else envs.MIN_SUPPORTED
        texts += [v for v in envs.releases(progress=progress) if Version(v) >= since]
    specs = _parse_specs(texts or list(DEFAULT_SUBJECTS), progress, "--sdk")
    return specs, args, _seed(args), progress


def _default_baseline(candidate_version: str | None, progress: _Progress) -> tuple[envs.Spec, str]:
    """The release the candidate's version names, with why it was chosen: a candidate built on a
    release carries it as its public version (``0.2.187+separate.channel`` names 0.2.187); a
    version naming no release on the index (or none readable) gets the latest."""
    if candidate_version is None:
        return envs.parse_spec("latest"), "the candidate did not build, so its version is unknown"
    named = verdict.release_named(candidate_version)
    if named is None:
        return envs.parse_spec("latest"), f"the candidate's version {candidate_version} names no release"
    published = _published(named, progress)
    if published is None:
        return envs.parse_spec("latest"), "the release list could not be read"
    if published:
        return envs.parse_spec(f"pypi:{named}"), f"the release the candidate's version {candidate_version} names"
    return envs.parse_spec("latest"), f"the candidate's version {candidate_version} names no release on the index"


def _published(version: str, progress: _Progress) -> bool | None:
    """Whether the index has release ``version``; None when its release list cannot be read."""
    try:
        return version in envs.releases(progress=progress)
    except envs.EnvError:
        return None


def cmd_verify(args: argparse.Namespace) -> int:
    _validate(args)
    for bug in args.claims or []:
        if bug not in BUG_NAMES:
            raise envs.EnvError(f"--claims {bug}: unknown bug; choose from {', '.join(BUG_NAMES)}")
    if args.bug and (left_out := [bug for bug in args.claims or [] if bug not in args.bug]):
        raise envs.EnvError(f"--claims {left_out[0]}: --bug leaves that bug out, so nothing would judge the claim; add --bug {left_out[0]}")
    progress = _Progress(args.quiet)
    candidate_spec = _parse_specs([args.candidate], progress, "--candidate")[0]
    baseline_spec = _parse_specs([args.baseline], progress, "--baseline")[0] if args.baseline else None
    seed = _seed(args)
    if baseline_spec is None:
        try:
            version: str | None = envs.ensure_env(candidate_spec, progress=progress.for_subject(candidate_spec.label)).sdk_version
        except envs.EnvError:
            version = None  # judged below as a candidate that does not build
        baseline_spec, why = _default_baseline(version, progress)
        progress(f"baseline: {baseline_spec.label} ({why}; --baseline SPEC to choose)")
    candidate, baseline = judge_all([candidate_spec, baseline_spec], args, seed, progress, _clis(args, progress))
    if baseline.results and all(r.verdict == "error" for r in baseline.results):
        too_old = envs.unsupported_reason(str(baseline.subject.get("sdk_version"))) if baseline.subject.get("sdk_version") else None
        raise envs.EnvError(f"--baseline {baseline_spec.label}: could not be judged ({baseline.results[0].reason}), so there is nothing "
                            "to compare the candidate with; give a baseline this harness judges" +
                            (f" (a release >= {envs.MIN_SUPPORTED})" if too_old else "") +
                            ", or leave --baseline out for the release the candidate's version names")
    elsewhere = _other_base(candidate, baseline, progress)
    rows = verdict.compare(baseline, candidate)
    unmet = {bug: problem for bug in args.claims or [] if (problem := claim_problem([r for r in rows if r["bug"] == bug]))}
    if args.json:
        print(json.dumps({"schema": verdict.SCHEMA, "seed": seed, "candidate": candidate.to_json(), "baseline": baseline.to_json(),
                          "comparison": rows, "unlike_runtimes": verdict.runtime_groups([baseline, candidate]), "baseline_note": elsewhere,
                          "claims": {bug: bug not in unmet for bug in args.claims or []}}, indent=2, default=str))
    else:
        text = verdict.render_comparison(baseline, candidate, markdown=args.markdown)
        if elsewhere:
            text += f"\n\n{'**Note**: ' if args.markdown else 'note: '}{elsewhere}"
        if args.claims:
            claims = ", ".join(f"{bug}: {f'unmet ({unmet[bug]})' if bug in unmet else 'met'}" for bug in args.claims)
            text += f"\n\n{'**Claims**' if args.markdown else 'claims'}: {claims}"
        print(text)
    if any(r["change"] == "regresses" for r in rows) or unmet:
        return 1
    return 2 if any(r["change"] == "error" for r in rows) else 0


def _other_base(candidate: verdict.CheckReport, baseline: verdict.CheckReport, progress: _Progress) -> str | None:
    """A note when a candidate built on a release is judged against another one: what changed
    between the two releases then shows as the candidate's change. None for a release judged as a
    candidate, or a version that names no release on the index."""
    named = verdict.release_named(candidate.subject.get("sdk_version"))
    if not verdict.is_candidate(candidate) or named is None or verdict.release_named(baseline.subject.get("sdk_version")) == named:
        return None
    if not _published(named, progress):
        return None
    return (f"baseline {baseline.subject.get('sdk_version')} is not the release the candidate's version names ({named}): "
            "what changed between those releases shows here as the candidate's change")


def claim_problem(rows: list[dict[str, Any]]) -> str | None:
    """Why a claimed fix does not hold, None when it does: some row of the bug ``fixes`` and none
    still shows, or newly shows, what users see (``narrows`` is not a fix), nor shows it where
    only the candidate runs."""
    failing = [r for r in rows if r["change"] in ("still reproduces", "narrows", "regresses", "error")
               or r["change"] == verdict.GAINS and r["candidate"] in ("reproduced", "hang")]
    if failing:
        return "; ".join(f"{r['model'] or '-'}/{r['backend']}: {r['change']}" + (f" ({r['candidate']})" if r["change"] == verdict.GAINS else "")
                         for r in failing)
    if not any(r["change"] == "fixes" for r in rows):
        compared = [r for r in rows if r["change"] != verdict.GAINS]
        return "no row fixes it" + ("" if compared else ": the baseline ran on none of its rows, so there is nothing it fixed")
    return None


def _signature(report: verdict.CheckReport, bug: str, manifestation: str | None) -> Any:
    """What bisect compares: the verdicts and manifestation sets of ``bug``'s results (so a flip
    inside ``reproduced`` counts), or whether ``manifestation`` shows."""
    results = sorted((r for r in report.results if r.bug == bug), key=lambda r: (r.model or "", r.backend))
    if manifestation:
        return any(manifestation in r.manifestations for r in results)
    return tuple((r.model, r.backend, r.verdict, tuple(r.manifestations)) for r in results)


def _describe(sig: Any, manifestation: str | None) -> str:
    if manifestation:
        return f"{manifestation} {'present' if sig else 'absent'}"
    return "; ".join(f"{m + '/' if m else ''}{b}: {v}" + (f" ({', '.join(names)})" if names else "") for m, b, v, names in sig)


def cmd_bisect(args: argparse.Namespace) -> int:
    """Galloping search: probe from+1, +2, +4, ... until the signature differs from the first
    release's, then bisect that last gap. Costs O(log distance to the change), so a change near
    ``--from`` takes a handful of envs even though the release list is long; like any bisection
    it assumes one change between the probes it brackets."""
    args.bug = [args.bug_name]
    _validate(args)
    if args.manifestation is not None and not args.manifestation.strip():
        raise envs.EnvError("--manifestation: empty; give a manifestation's name as check --json prints it (e.g. cancel_scope_cross_task)")
    progress = _Progress(args.quiet)
    known = envs.releases(progress=progress)
    asked_lo = _release(args.from_, "--from", progress) if args.from_ else envs.MIN_SUPPORTED
    hi_v = _release(args.to, "--to", progress) if args.to else Version(known[-1])
    if hi_v < envs.MIN_SUPPORTED:
        raise envs.EnvError(f"--to {hi_v} is older than the supported range (>= {envs.MIN_SUPPORTED}); give a newer --to")
    if asked_lo > hi_v:
        raise envs.EnvError(f"--from {asked_lo} is newer than --to {hi_v}: give the older release as --from")
    lo_v = max(asked_lo, envs.MIN_SUPPORTED)
    candidates = [v for v in known if lo_v <= Version(v) <= hi_v]
    if len(candidates) < 2:
        raise envs.EnvError(f"--from {asked_lo} --to {hi_v}: fewer than two supported releases (>= {envs.MIN_SUPPORTED}) "
                            "in that range; widen it")
    if lo_v > asked_lo:
        progress(f"bisect: --from {asked_lo} is older than the supported range (>= {envs.MIN_SUPPORTED}): bisecting from {lo_v}")
    seed = _seed(args)
    with preloaded() as preloaders:
        return _bisect(args, candidates, seed, progress, preloaders)


def _bisect(args: argparse.Namespace, candidates: list[str], seed: int, progress: _Progress,
            preloaders: preload.Preloaders | None) -> int:
    judged: dict[int, verdict.CheckReport] = {}

    def report(i: int) -> verdict.CheckReport:
        if i not in judged:
            judged[i] = judge(envs.parse_spec(f"pypi:{candidates[i]}"), args, seed, progress, preloaders=preloaders)
            progress(f"bisect: {candidates[i]}: {_describe(_signature(judged[i], args.bug_name, args.manifestation), args.manifestation)}")
        return judged[i]

    def sig(i: int) -> Any:
        return _signature(report(i), args.bug_name, args.manifestation)

    first = sig(0)
    last_same, boundary = _gallop(len(candidates), sig)
    after = sig(boundary) if boundary is not None else None
    if args.manifestation and not any(sig(i) for i in judged):
        shown = sorted({m for rep in judged.values() for r in rep.results if r.bug == args.bug_name for m in r.manifestations})
        raise envs.EnvError(f"--manifestation {args.manifestation}: {args.bug_name} showed no such manifestation on any of the "
                            f"{len(judged)} releases judged ({candidates[0]} ... {candidates[-1]}); "
                            f"it showed: {', '.join(shown) or 'nothing'} (names as in check --json)")
    verdict_change = None
    named = (last_same, boundary)  # the pair whose change is named, judged alike or not
    if args.manifestation and boundary is None:
        # the manifestation shows (or not) at both ends: say where what the bug shows does change
        def full(i: int) -> Any:
            return _signature(report(i), args.bug_name, None)

        same, changed = _gallop(len(candidates), full)
        named = (same, changed)
        verdict_change = None if changed is None else {
            "last_same": candidates[same], "first_different": candidates[changed],
            "before": _describe(full(same), None), "after": _describe(full(changed), None)}
    pair = [judged[i] for i in named if i is not None]
    reused = sum(1 for rep in judged.values() if rep.subject.get("env_reused"))
    result: dict[str, Any] = {
        "bug": args.bug_name, "manifestation": args.manifestation, "seed": seed,
        "from": candidates[0], "to": candidates[-1], "releases_in_range": len(candidates),
        "envs_judged": len(judged), "envs_built": len(judged) - reused, "envs_reused": reused,
        "last_same": candidates[last_same], "first_different": candidates[boundary] if boundary is not None else None,
        "before": _describe(first, args.manifestation),
        "after": _describe(after, args.manifestation) if boundary is not None else None,
        "verdict_change": verdict_change,
        "unlike_runtimes": verdict.runtime_groups(pair),
        "judged": {candidates[i]: judged[i].to_json() for i in sorted(judged)},
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        what = f"{args.bug_name}" + (f" manifestation {args.manifestation}" if args.manifestation else " verdict")
        if boundary is None:
            print(f"{what}: no change from {candidates[0]} to {candidates[-1]} ({result['before']} at both ends: no boundary to name)")
            if change := result.get("verdict_change"):
                print(f"{args.bug_name} verdict changes between {change['last_same']} ({change['before']}) and "
                      f"{change['first_different']} ({change['after']})")
        else:
            print(f"{what} changes between {result['last_same']} ({result['before']}) and {result['first_different']} ({result['after']})")
        if unlike := verdict.unlike_runtimes(pair):
            print(unlike)
        print(f"{len(judged)} of {len(candidates)} releases judged: {result['envs_built']} envs built, {reused} reused from the cache; seed {seed}")
    return 0


def _gallop(n: int, sig: Callable[[int], Any]) -> tuple[int, int | None]:
    """(last index like index 0, first index unlike it, or None) over ``n`` ordered subjects:
    probe +1, +2, +4, ... until one differs, then bisect that gap."""
    first = sig(0)
    last_same, step, boundary = 0, 1, None
    while boundary is None:
        probe = min(last_same + step, n - 1)
        if sig(probe) != first:
            boundary = probe
        elif probe == n - 1:
            break
        else:
            last_same, step = probe, step * 2
    if boundary is not None:
        while boundary - last_same > 1:
            mid = (last_same + boundary) // 2
            if sig(mid) == first:
                last_same = mid
            else:
                boundary = mid
    return last_same, boundary


# ---------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, with_bug: bool = True) -> None:
    options.add_judging_options(p, with_bug=with_bug)
    p.add_argument("--jobs", type=options.whole_number(1, "envs judged at once"), help="envs judged at once (default: the number of cores)")


def _guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an EnvError into the one-line, exit-2 answer every command gives for bad input."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except envs.EnvError as exc:
            print(f"pytest-agentsdk: error: {exc}", file=sys.stderr)
            return 2

    return run


def add_commands(sub: Any, add_output_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    subjects = "SPEC: VERSION, pypi:VERSION, latest, a source tree, a wheel/sdist file, git+file://...@ref, git+https://..."
    preloading = ("Envs whose files differ only in the SDK share one preloading server: each check is a fork of a process that "
                  "imported their common dependencies once (the same report; PYTEST_AGENTSDK_PRELOAD=0: a fresh interpreter per check).")
    matrix = sub.add_parser("matrix", help="judge several SDK releases, each in its own env",
                            description=f"Run check in one isolated env per subject and print a release x bug table. {subjects}",
                            epilog=preloading)
    matrix.add_argument("--sdk", action="append", metavar="SPEC", help=f"a subject (repeatable; default: {' '.join(DEFAULT_SUBJECTS)})")
    matrix.add_argument("--since", metavar="VERSION", help="every release since VERSION")
    matrix.add_argument("--all", action="store_true", help=f"every release since {envs.MIN_SUPPORTED}")
    matrix.add_argument("--from-json", action="extend", nargs="+", metavar="PATH",
                        help="render check --json results recorded elsewhere (a file, or a directory of *.json, e.g. tox's), "
                             "or merge the matrix --json output of every --shard slice into the table of one run")
    matrix.add_argument("--shard", type=options.shard, metavar="I/N",
                        help="judge only slice I of N of the subjects (round-robin over them sorted by release; the releases of one "
                             "source stay in one slice), for CI fleets")
    matrix.add_argument("--judge-each", action="store_true",
                        help="judge every release in its own env. By default the releases whose sdists differ only in version "
                             "strings (most releases only bump the bundled CLI) are judged once, on the newest of them, and the "
                             "others take its rows, marked judged_as in --json; --cli always judges each")
    _common(matrix)
    matrix.add_argument("--cli", type=options.cli_spec, action="append", metavar="PATH|VERSION|bundled",
                        help="judge over this real Claude Code CLI (repeatable: a CLI-version x bug table; without "
                             "--sdk the SDK is the latest release)")
    add_output_flags(matrix)
    matrix.set_defaults(func=_guarded(cmd_matrix))

    verify = sub.add_parser("verify", help="judge a fix candidate against its baseline",
                            description=f"Per bug/model/backend: fixes, narrows, still reproduces, regresses, unchanged, gains the surface, error. {subjects}",
                            epilog="Exit 1 when the candidate regresses anything or a --claims bug is not fixed.")
    verify.add_argument("--candidate", required=True, metavar="SPEC", help="the fix candidate")
    verify.add_argument("--baseline", metavar="SPEC", help="default: the release the candidate's version names, else latest")
    verify.add_argument("--claims", action="append", metavar="BUG", help="a bug the candidate claims to fix (repeatable)")
    _common(verify)
    verify.add_argument("--cli", type=options.cli_spec, metavar="PATH|VERSION|bundled",
                        help="judge both sides over this real Claude Code CLI: a change to SubprocessCLITransport is judged too")
    add_output_flags(verify)
    verify.set_defaults(func=_guarded(cmd_verify))

    bisect = sub.add_parser("bisect", help="find the release where a bug's verdict changes",
                            description="Search the PyPI releases for the first whose verdict (or manifestation) differs from --from's.")
    bisect.add_argument("--bug", required=True, dest="bug_name", choices=BUG_NAMES)
    bisect.add_argument("--manifestation", metavar="SIG", help="compare the presence of this manifestation instead of the verdicts")
    bisect.add_argument("--from", dest="from_", metavar="VERSION", help=f"first release (default {envs.MIN_SUPPORTED})")
    bisect.add_argument("--to", metavar="VERSION", help="last release (default: the latest)")
    _common(bisect, with_bug=False)
    bisect.add_argument("--json", action="store_true", help="print the boundary and every judged report as JSON")
    bisect.set_defaults(func=_guarded(cmd_bisect))
