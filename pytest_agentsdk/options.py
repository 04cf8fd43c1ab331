"""The command-line options every judging command shares (``check``, ``matrix``, ``verify``,
``bisect``), checked when they are parsed, and a parser whose errors are one line and exit 2."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

BACKENDS = ("asyncio", "trio")
DEFAULT_EXAMPLES = 30


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (the usage goes to ``--help``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"pytest-agentsdk: error: {message}; see {self.prog} --help\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse's, but an option the command does not take points at that command's help,
        and at the commands that do take it."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            commands = {name: sub for action in self._actions if isinstance(action, argparse._SubParsersAction)
                        for name, sub in action.choices.items()}
            command = getattr(parsed, "command", None)
            flag = extras[0].split("=", 1)[0]
            takers = [name for name, sub in commands.items() if flag in sub._option_string_actions]
            if not flag.startswith("-") or not takers:
                hint = ""
            elif command in takers:  # given before the command, where only --help and --version go
                hint = f" (put {flag} after {command})"
            else:
                hint = f" ({flag} is an option of {', '.join(takers)})"
            prog = commands[command].prog if command in commands else self.prog
            self.exit(2, f"pytest-agentsdk: error: unrecognized arguments: {' '.join(extras)}{hint}; see {prog} --help\n")
        return parsed


def whole_number(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum``; ``what`` says what the number counts."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({what})") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} ({what}), not {value}")
        return value

    return parse


def existing_directory(text: str) -> Path:
    """An argparse ``type``: a directory that exists."""
    path = Path(text)
    if not text or not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory; give one that exists")
    return path


def add_judging_options(p: argparse.ArgumentParser, *, with_bug: bool = True) -> None:
    """What to judge and how hard: the options ``check`` takes and passes on from the machine."""
    if with_bug:
        p.add_argument("--bug", action="append", help="only this bug (repeatable)")
    p.add_argument("--backend", action="append", choices=BACKENDS, help="only this backend (repeatable; default: both)")
    p.add_argument("--model", action="append", dest="models", help="only this CLI behaviour model (late_task_notification; repeatable)")
    p.add_argument("--seed", type=whole_number(0, "the seed of every random choice"),
                   help="seed of every random choice, one for every subject (default: random, printed)")
    add_examples_option(p)
    p.add_argument("--warnings-as-errors", action="store_true",
                   help="count manifestations shown only with warnings enabled (ResourceWarning, async generator GC) as reproduced")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


#: ``--model`` with ``--cli``: the scripted CLI's behaviour models mean nothing to a real one.
MODEL_WITH_CLI = "--model: over a real CLI (--cli) the CLI behaves as it does; leave --model out (models choose how the scripted CLI behaves)"


#: What to give ``--cli`` (or ``--agentsdk-cli``) instead of nothing.
EMPTY_CLI = "empty; give a CLI binary's path, 'bundled', or a CLI version such as 2.1.330"


def cli_spec(text: str) -> str:
    """An argparse ``type`` for ``--cli``: anything but blank (what it names is checked when resolved)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(EMPTY_CLI)
    return text


def add_examples_option(p: argparse.ArgumentParser, default: int = DEFAULT_EXAMPLES) -> None:
    """``--examples``: the search's budget, on top of the sweep (a report counts both)."""
    p.add_argument("--examples", type=whole_number(1, "searched examples per bug/model/backend"), default=default,
                   help=f"searched examples per bug/model/backend, after the sweep of every known class of interleaving "
                        f"(a report counts both) (default {default})")


def shard(text: str) -> tuple[int, int]:
    """An argparse ``type``: ``I/N``, slice I of N (1 <= I <= N)."""
    i, sep, n = text.partition("/")
    if not (sep and i.isdigit() and n.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (slice I of N, e.g. 1/4)")
    if int(n) < 1:
        raise argparse.ArgumentTypeError(f"slice {i} of {n}: N, the number of slices, must be at least 1")
    if not 1 <= int(i) <= int(n):
        raise argparse.ArgumentTypeError(f"slice {i} of {n}: I must be between 1 and N")
    return int(i), int(n)
