"""``python -m pytest_agentsdk check|replay|matrix|verify|bisect``.

``check`` judges the claude-agent-sdk installed in this environment; the other commands build
isolated environments and run ``check`` inside them (:mod:`pytest_agentsdk.envs`).
Exit codes everywhere: 0 nothing reproduced, 1 something reproduced or hung, 2 bad input or a
harness error (one line on stderr saying what is wrong and what to do), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM): see :mod:`pytest_agentsdk.interrupt`.

Only a few standard modules are imported before the SIGINT handler is in place (the rest is
imported where it is used), so Ctrl-C while the SDK, Hypothesis or trio are being imported is the
same one line as later.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, interrupt, options

if TYPE_CHECKING:
    from . import verdict

#: The exit status when the reader of stdout went away, as a shell reports a process SIGPIPE ended.
SIGPIPE_EXIT = 128 + signal.SIGPIPE


class UsageError(Exception):
    """Bad input: printed as one line, exit 2."""


def _seed(value: int | None) -> int:
    return value if value is not None else int.from_bytes(os.urandom(4), "big")


def _require_sdk() -> Any:
    if importlib.util.find_spec("claude_agent_sdk") is None:
        raise UsageError("claude-agent-sdk is not installed here: pip install claude-agent-sdk (or use 'matrix --sdk VERSION')")
    from . import compat

    return compat.sdk_info()


def _selected_bugs(names: list[str] | None) -> list[str]:
    from . import bugs

    present = bugs.available()
    for name in names or []:
        if name not in bugs.BUG_NAMES:
            raise UsageError(f"--bug {name}: unknown bug; choose from {', '.join(bugs.BUG_NAMES)}")
        if name not in present:
            raise UsageError(f"--bug {name}: this build of pytest-agentsdk does not ship that scenario yet")
    return names or present


def run_check(bug_names: list[str], backends: list[str], models: list[str] | None, seed: int, examples: int, progress: bool = True,
              warnings_as_errors: bool = False, cli: Any = None, jobs: int | None = None, drawings: Path | None = None) -> verdict.CheckReport:
    """Judge every selected (bug, model, backend) on the installed SDK, over the scripted CLI or,
    with ``cli`` (a :class:`~pytest_agentsdk.realcli.Cli`), over that real CLI, in this process; else
    ``jobs`` judgements at once (default: the cores), each in a fresh fork (:mod:`pytest_agentsdk.forked`),
    so the report is the same whatever ``jobs`` is. ``drawings``: a directory the checks of one run
    share their search drawings in (:func:`pytest_agentsdk.explore.drawn`)."""
    from . import bugs, explore, forked, verdict
    from .observe import scrub

    sdk = _require_sdk()
    info = verdict.subject_info(sdk.version, cli.version if cli else sdk.cli_version, sdk.installed_from, features=sdk.features,
                                runtime=verdict.runtime_versions())
    if cli:
        info["cli"] = {"path": str(cli.path), "source": cli.source}
    report = verdict.CheckReport(info, seed)
    rows: list[tuple[str, Any, str | None, str]] = []  # (bug, its scenario or the not_applicable result, model, backend)
    for name in bug_names:
        scenario = bugs.scenario(name)
        if cli:
            real = scenario.on_cli(cli)
            if real is None:
                rows.append((name, verdict.Result(name, "not_applicable", backends[0], None,
                                                  reason="no real-CLI stories for this bug yet (judged over the scripted CLI only)"), None, backends[0]))
                continue
            scenario = real
        rows += [(name, scenario, model, backend) for model in scenario.models
                 if not (models and model is not None and model not in models) for backend in backends]
    # what every judgement starts from, made once before the forks: every scenario imported,
    # whichever are selected (Hypothesis draws constants from the loaded modules), trio, Hypothesis
    for name in bugs.available():
        bugs.scenario(name)
    if "trio" in backends and importlib.util.find_spec("trio") is not None:
        import trio  # noqa: F401
    searches: dict[int, tuple[str, Any]] = {}  # one drawing per strategy, for every backend and model that searches it
    for name, scenario, model, _ in [] if cli else rows:
        if not isinstance(scenario, verdict.Result):
            searches.setdefault(id(strategy := scenario.examples(model)), (f"{name}-{model}" if model else name, strategy))
    if searches:
        explore.warm_up(strategy for _, strategy in searches.values())
    for label, strategy in searches.values():
        try:
            explore.drawn(strategy, seed, examples, drawings / f"{label}-seed{seed}-examples{examples}.pickle" if drawings else None)
        except Exception:  # noqa: BLE001 - not hidden: each row that searches it draws again, and reports the error
            continue

    def judge(name: str, scenario: Any, model: str | None, backend: str) -> Callable[[], verdict.Result]:
        def run() -> verdict.Result:
            if isinstance(scenario, verdict.Result):  # nothing to judge
                return scenario
            try:
                return scenario.judge(sdk, backend, model, seed, examples, warnings_as_errors)  # type: ignore[no-any-return]
            except Exception as exc:  # the harness, or the SDK under judgement, broke: reported, never hidden
                return verdict.Result(name, "error", backend, model, reason=verdict.one_line(exc, clean=scrub),
                                      evidence={"traceback": scrub(traceback.format_exc(limit=8))})
        return run

    def crashed(index: int, why: str) -> verdict.Result:
        name, _, model, backend = rows[index]
        return verdict.Result(name, "error", backend, model, reason=why)

    judgements = [judge(*row) for row in rows]
    # a real CLI's processes and directories are known only to the process whose session started
    # them, and Ctrl-C cleans them up there: real-CLI rows are judged in this process, one by one
    results = (run() for run in judgements) if cli else forked.run(judgements, jobs or forked.default_jobs(), crashed)
    for (name, scenario, model, backend), result in zip(rows, results):
        report.results.append(result)
        if progress and not isinstance(scenario, verdict.Result):
            print(f"  {name} {model or '-'} {backend}: {result.verdict} ({result.examples} examples)", file=sys.stderr)
    return report


def cmd_check(args: argparse.Namespace) -> int:
    seed = _seed(args.seed)
    from . import bugs

    selected = _selected_bugs(args.bug)
    if problem := bugs.model_problem(selected, args.models):
        raise UsageError(problem)
    if args.models and args.cli:
        raise UsageError(options.MODEL_WITH_CLI)
    cli = _resolve_cli(args) if args.cli else None
    print(f"pytest-agentsdk check: seed {seed}" + (f", real CLI {cli.describe()}" if cli else ""), file=sys.stderr)
    report = run_check(selected, args.backend or list(options.BACKENDS), args.models, seed, args.examples, progress=not args.quiet,
                       warnings_as_errors=args.warnings_as_errors, cli=cli, jobs=args.jobs, drawings=args.drawings)
    _emit(report, args)
    return report.exit_code


def _resolve_cli(args: argparse.Namespace) -> Any:
    """The real CLI ``--cli`` names (installed from npm on first use); a bad one is a usage error."""
    from . import realcli

    try:
        return realcli.resolve(args.cli, progress=None if getattr(args, "quiet", False) else lambda line: print(line, file=sys.stderr))
    except realcli.CliError as exc:
        raise UsageError(str(exc)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    from . import bugs
    from .script import ScriptError

    _require_sdk()
    (name,) = _selected_bugs([args.bug])
    text = args.example
    if not text.lstrip().startswith(("{", "[")):
        path = Path(text)
        if not path.is_file():
            raise UsageError(f"--example {text}: neither JSON nor a readable file")
        text = path.read_text()
    try:
        example = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--example: not valid JSON ({exc.msg} at column {exc.colno})") from None
    scenario = bugs.scenario(name)
    if args.model is not None and args.model not in scenario.models:
        models = [m for m in scenario.models if m]
        raise UsageError(f"--model {args.model}: " + (f"{name} is judged under {', '.join(models)}" if models else
                                                       f"{name} has no CLI behaviour models; leave --model out"))
    if args.cli:
        real = scenario.on_cli(_resolve_cli(args))
        if real is None:
            raise UsageError(f"--cli: {name} has no real-CLI stories yet; replay it without --cli")
        scenario = real
    try:
        outcome = scenario.run_example(example, args.backend, args.model)
    except ScriptError as exc:
        raise UsageError(str(exc) if str(exc).startswith("example") else f"--example: {exc}") from None
    print(json.dumps({"bug": name, "backend": args.backend, "model": args.model, "failed": outcome.failed,
                      "manifestations": outcome.manifestations, "hang": outcome.hang, "evidence": outcome.evidence},
                     indent=2, default=str))
    return 1 if outcome.failed else 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    from . import fidelity

    _require_sdk()
    cli = _resolve_cli(args)
    comparisons = fidelity.run(cli, args.backend, progress=None if args.quiet else lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps([{"story": c.story, "matches": c.matches, "differences": c.differences, "known": c.known,
                           "real": [s.describe() for s in c.real], "scripted": [s.describe() for s in c.scripted]}
                          for c in comparisons], indent=2))
    else:
        print(fidelity.render(comparisons, cli))
    return 0 if all(c.matches for c in comparisons) else 1


def cmd_record(args: argparse.Namespace) -> int:
    from .record import record

    for option, path, what in (("capture", args.capture, "a stdout capture (JSONL) or a timed trace"),
                               ("--stdin", args.stdin, "the SDK's writes beside a stdout capture (JSONL)")):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{option} {path}: {'a directory' if Path(path).is_dir() else 'no such file'}; give {what}")
    if args.out and not Path(args.out).parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {Path(args.out).parent} does not exist; create it or write elsewhere")
    script = record(Path(args.capture), Path(args.stdin) if args.stdin else None)
    text = script.dumps()
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


def _emit(report: verdict.CheckReport, args: argparse.Namespace) -> None:
    from . import verdict

    if args.json:
        print(report.dumps())
    elif args.markdown:
        print(verdict.render_markdown(report))
    else:
        print(verdict.render_table(report))


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the versioned verdict JSON")
    out.add_argument("--markdown", action="store_true", help="print Markdown for a PR comment")


def _version() -> str:
    import importlib.metadata

    try:
        sdk = f"claude-agent-sdk {importlib.metadata.version('claude-agent-sdk')}"
    except importlib.metadata.PackageNotFoundError:
        sdk = "claude-agent-sdk not installed"
    return f"pytest-agentsdk {__version__} ({sdk}; Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    parser = options.Parser(
        prog="python -m pytest_agentsdk",
        description="Judge claude-agent-sdk releases and fix candidates against three lifecycle bugs.",
        epilog=f"Exit codes: 0 nothing reproduced, 1 reproduced or hang, 2 bad input or harness error, "
               f"{interrupt.EXIT_CODE} interrupted (Ctrl-C), {interrupt.STOPS[signal.SIGTERM][1]} terminated (SIGTERM): "
               "child processes and half-built envs are removed first.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="judge the SDK installed in this environment",
                           description="Run every registered bug scenario against the installed claude-agent-sdk.")
    options.add_judging_options(check)
    check.add_argument("--cli", type=options.cli_spec, metavar="PATH|VERSION|bundled",
                       help="judge over this real Claude Code CLI (a binary, the SDK wheel's bundled one, or a version "
                            "installed from npm) against the scripted Messages API, instead of the scripted CLI")
    check.add_argument("--jobs", type=options.whole_number(1, "judgements at once"),
                       help="bug/model/backend judgements at once, each in its own process (default: the number of cores; "
                            "the report is the same for any number)")
    check.add_argument("--drawings", type=options.existing_directory, metavar="DIR",
                       help="share the search's drawn examples with other checks of one run through DIR (matrix, verify, "
                            "bisect and mutants pass one per dependency set: a drawing depends on the harness and "
                            "Hypothesis only); DIR's files are trusted")
    _add_output_flags(check)
    check.set_defaults(func=cmd_check)

    replay = sub.add_parser("replay", help="run one example (a counterexample from a report) again",
                            description="Replay one JSON example of a bug scenario and print what it showed.")
    replay.add_argument("--bug", required=True)
    replay.add_argument("--backend", choices=options.BACKENDS, default="asyncio")
    replay.add_argument("--model", help="CLI behaviour model, where the bug has them")
    replay.add_argument("--example", required=True, help="the example as JSON, or a file holding it")
    replay.add_argument("--cli", type=options.cli_spec, metavar="PATH|VERSION|bundled", help="replay over this real Claude Code CLI (as check --cli)")
    replay.set_defaults(func=cmd_replay)

    fidelity = sub.add_parser("fidelity", help="compare the scripted CLI with a real CLI, story by story",
                              description="Play each bug's default story on a real Claude Code CLI (against the scripted "
                                          "Messages API) and on the scripted CLI, and compare the frames the oracles read, "
                                          "agent by agent (concurrent agents interleave as timing has it). Exit 0 when every difference is a known one, 1 otherwise.")
    fidelity.add_argument("--cli", type=options.cli_spec, required=True, metavar="PATH|VERSION|bundled", help="the real CLI (as check --cli)")
    fidelity.add_argument("--backend", choices=options.BACKENDS, default="asyncio")
    fidelity.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    fidelity.add_argument("--json", action="store_true", help="print the comparison as JSON")
    fidelity.set_defaults(func=cmd_fidelity)

    rec = sub.add_parser("record", help="turn a real CLI's capture into a Script the scripted CLI replays",
                         description="Read a CLI stdout capture (JSONL, one prompt) or a timed trace ({t, dir: in|out, line} "
                                     "per line, any number of prompts) and print the Script that replays it: each prompt's "
                                     "frames up to its result, what came between turns as an event after that result.")
    rec.add_argument("capture", help="the capture file")
    rec.add_argument("--stdin", help="the SDK's writes (JSONL) beside a stdout capture")
    rec.add_argument("--out", help="write the Script here instead of stdout")
    rec.set_defaults(func=cmd_record)

    from . import machine, mutants

    machine.add_commands(sub, _add_output_flags)
    mutants.add_command(sub)  # mutants builds on machine: registered here, so neither imports the other both ways
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # a SIGINT in the instant after the handler is given back, on the way out
        print(interrupt.MESSAGE, file=sys.stderr)
        return interrupt.EXIT_CODE


def _main(argv: list[str] | None) -> int:
    with interrupt.handled():
        from . import verdict
        from .script import ScriptError

        try:
            args = build_parser().parse_args(argv)
            code = int(args.func(args))
            sys.stdout.flush()  # here, not at exit: a reader gone by now is told apart below
            return code
        except (UsageError, ScriptError) as exc:
            print(f"pytest-agentsdk: error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # a harness bug: exit 1 would read as "reproduced", a traceback as a crash of the SDK
            if isinstance(exc, BrokenPipeError) and _stdout_reader_gone():  # `| head`: stop quietly, as SIGPIPE would
                return SIGPIPE_EXIT
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"pytest-agentsdk: error: internal error ({verdict.one_line(exc)} at {Path(where.filename).name}:{where.lineno}); "
                  "please report it with the command line", file=sys.stderr)
            return 2


def _stdout_reader_gone() -> bool:
    """stdout is a pipe whose reader closed it; then it points at /dev/null, so nothing fails at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (captured): not a pipe that broke
        return False
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poll.poll(0)):
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return True


if __name__ == "__main__":
    code = main()
    # the interpreter's last collections would walk every object the SDK, mcp and Hypothesis made
    # (a quarter of a second of a check); frozen, they go with the process. atexit handlers still
    # run (weakref.finalize's too); what only a collection would reach (__del__ of garbage in a
    # cycle) does not: the harness closes what it opens with context managers
    gc.freeze()
    sys.exit(code)
