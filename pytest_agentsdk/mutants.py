"""``mutants``: does the harness catch the ways real SDK code breaks, and stay quiet on changes
that break nothing it checks?

Each mutant is a small patch over the latest release's ``claude_agent_sdk`` package, built as a
source tree (:mod:`pytest_agentsdk.patching`) and judged by the verify machinery against the
unmodified release with one seed. A property-breaking mutant is caught when ``verify`` would call
it ``regresses`` on a bug it targets through a manifestation (a mutant the harness cannot judge,
``error``, is not caught); a neutral one when no manifestation moves on any bug (``unchanged``:
every row ``unchanged`` or ``still reproduces``, i.e. the same sets as the release). A neutral
mutant is either a change that breaks nothing, or a real fault that provably changes nothing any of
the three bugs' consumers can see: it says why (``why_neutral``). Only the targeted bugs are judged
for a breaking mutant (all of them for a neutral one), because one ``check`` of every bug costs
15-25 s on two cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import envs, forked, interrupt, machine, options, verdict
from .bugs import BUG_NAMES
from .patching import PACKAGE_DIR_CODE, Patch, StalePatch, build_source_tree

DEFAULT_EXAMPLES = 5
_QUERY, _PARSER, _CLIENT, _INTERNAL_CLIENT = "_internal/query.py", "_internal/message_parser.py", "client.py", "_internal/client.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    bugs: tuple[str, ...]  # the bugs whose property it breaks; () for a neutral change
    what: str
    patches: tuple[Patch, ...]
    why_neutral: str = ""  # for a real fault judged neutral: why no consumer of the three bugs can see it

    @property
    def expected(self) -> str:
        return "regresses" if self.bugs else "unchanged"

    @property
    def judged(self) -> tuple[str, ...]:
        return self.bugs or BUG_NAMES


_CLOSE_READER = (
    "        if self._read_task is not None and not self._read_task.done():\n"
    "            self._read_task.cancel()\n"
    "            await self._read_task.wait()\n"
    "        self._read_task = None\n"
)
_SEND = "                # Regular SDK messages go to the stream\n                await self._message_send.send(message)\n"
_RESPONSE_END = "            yield message\n            if isinstance(message, ResultMessage):\n                return\n"
_NOTIFICATION_STATUS = '                            status=data["status"],\n                            output_file=data["output_file"],\n'

_MUTANTS = (
    Mutant("task_group_reader", ("cross_task_close",),
           "the reader runs in an anyio task group start() enters and close() exits, from whatever task closes (0.1.48's bug)", (
        Patch(_QUERY, "        if self._read_task is None:\n            self._read_task = spawn_detached(self._read_messages())\n",
              '        if getattr(self, "_tg", None) is None:\n'
              "            self._tg = anyio.create_task_group()\n"
              "            await self._tg.__aenter__()\n"
              "            self._tg.start_soon(self._read_messages)\n"),
        Patch(_QUERY, _CLOSE_READER,
              '        if getattr(self, "_tg", None) is not None:\n'
              "            self._tg.cancel_scope.cancel()\n"
              "            with suppress(anyio.get_cancelled_exc_class()):\n"
              "                await self._tg.__aexit__(None, None, None)\n"
              "            self._tg = None\n"),
    )),
    Mutant("slow_close", ("cross_task_close",), "Query.close() waits 50 ms after stopping the reader, before closing the transport",
           (Patch(_QUERY, _CLOSE_READER, _CLOSE_READER + "        await anyio.sleep(0.05)\n"),)),
    Mutant("close_unshielded", ("cross_task_close",), "Query.close() without its shield: a cancelled caller aborts it before transport.close()",
           (Patch(_QUERY, "        with anyio.CancelScope(shield=True):\n            await self._close_impl()\n",
                  "        await self._close_impl()\n"),)),
    Mutant("query_close_skipped", ("cross_task_close",), "query()'s generator never closes its Query (the finally only closes the stream)",
           (Patch(_INTERNAL_CLIENT, "        finally:\n            await query.close()\n", "        finally:\n"),)),
    Mutant("disconnect_skips_close", ("cross_task_close",), "ClaudeSDKClient.disconnect() drops its Query without closing it",
           (Patch(_CLIENT, "            await self._query.close()\n            self._query.close_receive_stream()\n",
                  "            self._query.close_receive_stream()\n"),)),
    Mutant("reader_left_pending", ("cross_task_close",), "Query.close() forgets the reader task instead of cancelling and awaiting it",
           (Patch(_QUERY, _CLOSE_READER, "        self._read_task = None\n"),)),
    Mutant("cancel_swallowed", (), "the reader swallows CancelledError (returns instead of re-raising)",
           (Patch(_QUERY, "            raise  # Re-raise to properly handle cancellation\n", "            return\n"),),
           why_neutral="the reader is a detached task (spawn_detached) whose only canceller is Query.close(), which awaits it "
                       "and discards its outcome; returning ends it at the same point, and its finally still sends the end "
                       "of the stream and closes it: no consumer can tell"),
    Mutant("stdin_closed_early", (), "query() with a string prompt closes stdin right after writing it, before the result",
           (Patch(_INTERNAL_CLIENT, "                query.spawn_task(query.wait_for_result_and_end_input())\n",
                  "                await chosen_transport.end_input()\n"),),
           why_neutral="wait_for_result_and_end_input() keeps stdin open only while hooks, SDK MCP servers or can_use_tool "
                       "need it (#1088) and closes it at once otherwise; no consumer of the three bugs configures any, so "
                       "the release closes stdin right after the prompt too"),
    Mutant("result_dropped", ("cross_task_close",), "the parser drops every ResultMessage (parse_message returns None)",
           (Patch(_PARSER, '        case "result":\n            try:\n', '        case "result":\n            return None\n            try:\n'),)),
    Mutant("disconnect_closes_twice", ("cross_task_close",), "ClaudeSDKClient.disconnect() closes its Query twice, the transport with it",
           (Patch(_CLIENT, "            await self._query.close()\n            self._query.close_receive_stream()\n",
                  "            await self._query.close()\n            await self._query.close()\n"
                  "            self._query.close_receive_stream()\n"),)),
    Mutant("response_stops_early", ("late_task_notification",), "receive_response() returns at the ResultMessage without yielding it",
           (Patch(_CLIENT, _RESPONSE_END, "            if isinstance(message, ResultMessage):\n                return\n            yield message\n"),)),
    Mutant("response_stops_late", ("late_task_notification",), "receive_response() yields one message past the ResultMessage",
           (Patch(_CLIENT, "        async for message in self.receive_messages():\n" + _RESPONSE_END,
                  "        past_result = False\n"
                  "        async for message in self.receive_messages():\n"
                  "            yield message\n"
                  "            if past_result:\n"
                  "                return\n"
                  "            past_result = isinstance(message, ResultMessage)\n"),)),
    Mutant("notification_dropped", ("late_task_notification",), "the parser drops every task_notification (parse_message returns None)",
           (Patch(_PARSER, '                    case "task_notification":\n                        return TaskNotificationMessage(\n',
                  '                    case "task_notification":\n                        return None\n'
                  "                        return TaskNotificationMessage(\n"),)),
    Mutant("notification_duplicated", ("late_task_notification",), "the reader queues every task_notification twice",
           (Patch(_QUERY, _SEND, _SEND + '                if message.get("subtype") == "task_notification":\n'
                                         "                    await self._message_send.send(message)\n"),)),
    Mutant("notification_reordered", ("late_task_notification",), "the reader holds each task_notification back behind the next frame",
           (Patch(_QUERY, _SEND,
                  "                # Regular SDK messages go to the stream\n"
                  '                if message.get("subtype") == "task_notification" and getattr(self, "_held", None) is None:\n'
                  "                    self._held = message\n"
                  "                    continue\n"
                  "                await self._message_send.send(message)\n"
                  '                held, self._held = getattr(self, "_held", None), None\n'
                  "                if held is not None:\n"
                  "                    await self._message_send.send(held)\n"),)),
    Mutant("all_completed", ("premature_completion",), "every task_notification is typed completed",
           (Patch(_PARSER, _NOTIFICATION_STATUS, _NOTIFICATION_STATUS.replace('data["status"]', '"completed"')),)),
    Mutant("all_failed", ("premature_completion",), "every task_notification is typed failed",
           (Patch(_PARSER, _NOTIFICATION_STATUS, _NOTIFICATION_STATUS.replace('data["status"]', '"failed"')),)),
    Mutant("updates_completed", ("premature_completion",), "every terminal task_updated patch is typed completed",
           (Patch(_PARSER, '                            status=patch.get("status"),\n',
                  '                            status=patch.get("status") and "completed",\n'),)),
    Mutant("stop_reason_swallowed", ("premature_completion",), "AssistantMessage.stop_reason is always None",
           (Patch(_PARSER, '                    stop_reason=data["message"].get("stop_reason"),\n',
                  "                    stop_reason=None,\n"),)),
    Mutant("renamed_local", (), "a local renamed in ClaudeSDKClient.receive_messages",
           (Patch(_CLIENT, "            message = parse_message(data)\n            if message is not None:\n                yield message\n",
                  "            parsed = parse_message(data)\n            if parsed is not None:\n                yield parsed\n"),)),
    Mutant("extra_log_line", (), "Query.start() logs a debug line",
           (Patch(_QUERY, "        if self._read_task is None:\n            self._read_task = spawn_detached(self._read_messages())\n",
                  '        logger.debug("starting the message reader")\n'
                  "        if self._read_task is None:\n            self._read_task = spawn_detached(self._read_messages())\n"),)),
)
MUTANTS: dict[str, Mutant] = {m.name: m for m in _MUTANTS}


def judge_mutant(mutant: Mutant, report: verdict.CheckReport | None, baseline: verdict.CheckReport, stale: str | None) -> dict[str, Any]:
    """The mutant's row: its verify comparison on the bugs it was judged on, and whether it was caught."""
    if report is None:
        rows: list[dict[str, Any]] = []
        got = "stale"
    else:
        base = verdict.CheckReport(baseline.subject, baseline.seed, [r for r in baseline.results if r.bug in mutant.judged])
        rows = verdict.compare(base, report)
        changes = {_judged_change(r) for r in rows}
        got = next((c for c in ("regresses", "error", "narrows", "fixes") if c in changes), "unchanged")
    moved = [f"{r['bug']} {r['model'] + ' ' if r['model'] else ''}{r['backend']}: {verdict.describe_change(r)}"
             for r in rows if _judged_change(r) == got]
    return {"name": mutant.name, "what": mutant.what, "bugs": list(mutant.bugs), "expected": mutant.expected, "got": got,
            "caught": got == mutant.expected, "examples": sum(r.examples for r in report.results) if report else 0,
            "detail": stale or (moved[0] if moved and got != "unchanged" else ""), "comparison": rows}


def _judged_change(row: dict[str, Any]) -> str:
    """A row's change, except that a mutant the harness could not judge (``verify``'s regression
    "candidate errors") is ``error``: a harness crash is no proof the fault was caught."""
    return "error" if row["change"] == "regresses" and row["candidate"] == "error" else str(row["change"])


def render(rows: list[dict[str, Any]], width: int = 90) -> str:
    table = [["mutant", "expected", "got", "examples", "what moved (first row)"]]
    for row in rows:
        expected = f"{'+'.join(row['bugs']) or 'none'}: {row['expected']}"
        got = row["got"] + ("" if row["caught"] else "  MISSED")
        detail = row["detail"] if len(row["detail"]) <= width else row["detail"][: width - 3] + "..."
        table.append([row["name"], expected, got, str(row["examples"]), detail])
    return "\n".join(verdict._fixed_width(table))


def cmd_mutants(args: argparse.Namespace) -> int:
    unknown = [name for name in args.only or [] if name not in MUTANTS]
    if unknown:
        raise envs.EnvError(f"--only {unknown[0]}: no such mutant; choose from {', '.join(MUTANTS)}")
    chosen = [MUTANTS[name] for name in dict.fromkeys(args.only or MUTANTS)]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {'+'.join(m.bugs) or 'none'}: {m.expected}: {m.what}" + (f" (neutral: {m.why_neutral})" if m.why_neutral else ""))
        return 0
    started = time.monotonic()
    progress = machine._Progress(args.quiet)
    progress(f"pytest-agentsdk mutants: seed {args.seed}, --examples {args.examples}")
    judging = argparse.Namespace(examples=args.examples, backend=None, models=None, warnings_as_errors=False, bug=None)
    latest = envs.parse_spec("latest")
    package = Path(envs.ensure_env(latest, progress=progress.for_subject("latest")).run(["-c", PACKAGE_DIR_CODE]).stdout.strip())
    with tempfile.TemporaryDirectory(prefix="agentsdk-mutants-") as tmp:
        trees: dict[str, envs.Spec] = {}
        stale: dict[str, str] = {}
        for m in chosen:
            try:
                tree = build_source_tree(package, Path(tmp) / m.name, m.patches, local=f"mutant.{m.name}", what=f"mutant {m.name}")
                trees[m.name] = envs.Spec("path", str(tree), m.name)
            except StalePatch as exc:
                stale[m.name] = str(exc)
                progress(f"[{m.name}] stale: {exc}")
        at_once = args.jobs or forked.default_jobs()
        check_jobs = machine.share_of_cores(at_once)
        with machine.preloaded() as preloaders, ThreadPoolExecutor(max_workers=at_once) as pool:
            base_future = pool.submit(machine.judge, latest, judging, args.seed, progress, None, check_jobs, preloaders)
            futures = {name: pool.submit(machine.judge, spec, argparse.Namespace(**{**vars(judging), "bug": list(MUTANTS[name].judged)}),
                                         args.seed, progress, None, check_jobs, preloaders) for name, spec in trees.items()}
            interrupt.wait([base_future, *futures.values()])
            baseline = base_future.result()
            reports = {name: f.result() for name, f in futures.items()}
    rows = [judge_mutant(m, reports.get(m.name), baseline, stale.get(m.name)) for m in chosen]
    wall = time.monotonic() - started
    missed = [r["name"] for r in rows if not r["caught"]]
    summary = (f"{len(rows) - len(missed)} of {len(rows)} mutants judged as expected"
               + (f" (missed: {', '.join(missed)})" if missed else "")
               + f"; claude-agent-sdk {baseline.subject.get('sdk_version')}, seed {args.seed}, --examples {args.examples}, "
               f"wall time {wall:.0f} s")
    if args.json:
        print(json.dumps({"schema": verdict.SCHEMA, "seed": args.seed, "examples": args.examples, "wall_s": round(wall, 1),
                          "baseline": baseline.to_json(), "mutants": rows}, indent=2, default=str))
    else:
        print(render(rows) + "\n\n" + summary)
    return 1 if missed else 0


def add_command(sub: Any) -> None:
    p = sub.add_parser("mutants", help="judge small faults in the latest release: does the harness catch each?",
                       description="Apply each mutant to a copy of the latest release's package and verify it against the "
                                   "release: property-breaking mutants must regress the bug they target, neutral ones "
                                   "must leave every bug unchanged.",
                       epilog="Exit 0 when every mutant is judged as expected, 1 otherwise, 2 on bad input.")
    p.add_argument("--only", action="append", metavar="NAME", help="only this mutant (repeatable; see --list)")
    p.add_argument("--list", action="store_true", help="list the mutants and what each should trip")
    p.add_argument("--seed", type=options.whole_number(0, "the seed of every random choice"), default=0,
                   help="seed of every random choice, the same for the release and every mutant (default 0)")
    options.add_examples_option(p, DEFAULT_EXAMPLES)
    p.add_argument("--jobs", type=options.whole_number(1, "envs judged at once"), help="envs judged at once (default: the number of cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="print every mutant's comparison as JSON")
    p.set_defaults(func=machine._guarded(cmd_mutants))
