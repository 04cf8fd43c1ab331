"""``python -m pytest_agentsdk check|replay|matrix|verify|bisect``.

``check`` judges the claude-agent-sdk installed in this environment; the other commands build
isolated environments and run ``check`` inside them (:mod:`pytest_agentsdk.envs`).
Exit codes everywhere: 0 nothing reproduced, 1 something reproduced or hung, 2 bad input or a
harness error (one line on stderr saying what is wrong and what to do).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from . import verdict
from .script import ScriptError

BACKENDS = ("asyncio", "trio")
DEFAULT_EXAMPLES = 30


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
              warnings_as_errors: bool = False) -> verdict.CheckReport:
    """Judge every selected (bug, model, backend) on the installed SDK."""
    from . import bugs

    sdk = _require_sdk()
    report = verdict.CheckReport(verdict.subject_info(sdk.version, sdk.cli_version, features=sdk.features), seed)
    for name in bug_names:
        scenario = bugs.scenario(name)
        for model in scenario.models:
            if models and model is not None and model not in models:
                continue
            for backend in backends:
                try:
                    result = scenario.judge(sdk, backend, model, seed, examples, warnings_as_errors)
                except Exception as exc:  # the harness, or the SDK under judgement, broke: reported, never hidden
                    result = verdict.Result(name, "error", backend, model, reason=verdict.one_line(exc),
                                            evidence={"traceback": traceback.format_exc(limit=8)})
                report.results.append(result)
                if progress:
                    print(f"  {name} {model or '-'} {backend}: {result.verdict} ({result.examples} examples)", file=sys.stderr)
    return report


def cmd_check(args: argparse.Namespace) -> int:
    seed = _seed(args.seed)
    if args.models:
        from . import bugs

        known = {m for n in bugs.available() for m in bugs.scenario(n).models if m}
        for m in args.models:
            if m not in known:
                raise UsageError(f"--model {m}: unknown CLI behaviour model; choose from {', '.join(sorted(known))}")
    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    selected = _selected_bugs(args.bug)
    print(f"pytest-agentsdk check: seed {seed}", file=sys.stderr)
    report = run_check(selected, args.backend or list(BACKENDS), args.models, seed, args.examples, progress=not args.quiet,
                       warnings_as_errors=args.warnings_as_errors)
    _emit(report, args)
    return report.exit_code


def cmd_replay(args: argparse.Namespace) -> int:
    from . import bugs

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
    outcome = bugs.scenario(name).run_example(example, args.backend, args.model)
    print(json.dumps({"bug": name, "backend": args.backend, "model": args.model, "failed": outcome.failed,
                      "manifestations": outcome.manifestations, "hang": outcome.hang, "evidence": outcome.evidence},
                     indent=2, default=str))
    return 1 if outcome.failed else 0


def _emit(report: verdict.CheckReport, args: argparse.Namespace) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_agentsdk",
        description="Judge claude-agent-sdk releases and fix candidates against three lifecycle bugs.",
        epilog="Exit codes: 0 nothing reproduced, 1 reproduced or hang, 2 bad input or harness error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check", help="judge the SDK installed in this environment",
                           description="Run every registered bug scenario against the installed claude-agent-sdk.")
    check.add_argument("--bug", action="append", help="only this bug (repeatable)")
    check.add_argument("--backend", action="append", choices=BACKENDS, help="only this backend (repeatable; default: both)")
    check.add_argument("--model", action="append", dest="models", help="only this CLI behaviour model (late_task_notification)")
    check.add_argument("--seed", type=int, help="seed for every random choice (default: random, printed)")
    check.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help=f"examples per bug/model/backend (default {DEFAULT_EXAMPLES})")
    check.add_argument("--warnings-as-errors", action="store_true",
                       help="count manifestations shown only with warnings enabled (ResourceWarning, async generator GC) as reproduced")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    _add_output_flags(check)
    check.set_defaults(func=cmd_check)

    replay = sub.add_parser("replay", help="run one example (a counterexample from a report) again",
                            description="Replay one JSON example of a bug scenario and print what it showed.")
    replay.add_argument("--bug", required=True)
    replay.add_argument("--backend", choices=BACKENDS, default="asyncio")
    replay.add_argument("--model", help="CLI behaviour model, where the bug has them")
    replay.add_argument("--example", required=True, help="the example as JSON, or a file holding it")
    replay.set_defaults(func=cmd_replay)

    from . import machine

    machine.add_commands(sub, _add_output_flags)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, ScriptError) as exc:
        print(f"pytest-agentsdk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-agentsdk: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
