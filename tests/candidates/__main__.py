"""Build a candidate as a source tree to judge by hand: ``python -m candidates NAME DEST`` (from
``tests/``, or with ``PYTHONPATH=tests``); ``--list`` names them with the bug module that says what
``verify`` should report. The tree is what the tests judge: BASE_VERSION's package, patched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_agentsdk import envs, patching

from . import BASE_VERSION, BUG_OF, CANDIDATES, build_candidate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m candidates", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="the candidate (see --list)")
    parser.add_argument("dest", nargs="?", type=Path, help="where to write the source tree (must not exist)")
    parser.add_argument("--list", action="store_true", help="name every candidate and the bug it is for")
    args = parser.parse_args(argv)
    if args.list:
        for name in CANDIDATES:
            print(f"{name:<26} {BUG_OF[name]}  (tests/candidates/{BUG_OF[name]}.py says what verify should report)")
        return 0
    if args.name not in CANDIDATES or args.dest is None:
        parser.error(f"give a candidate ({', '.join(CANDIDATES)}) and a destination that does not exist yet")
    if args.dest.exists():
        parser.error(f"{args.dest}: exists already; give a new path")
    try:
        base = envs.ensure_env(f"pypi:{BASE_VERSION}", progress=lambda line: print(line, file=sys.stderr))
    except envs.EnvError as exc:
        parser.error(f"cannot build claude-agent-sdk {BASE_VERSION}, which the candidates patch: {exc}")
    package = Path(base.run(["-c", patching.PACKAGE_DIR_CODE]).stdout.strip())
    tree = build_candidate(args.name, package, args.dest)
    print(tree)
    print(f"judge it: python -m pytest_agentsdk verify --candidate {tree} --bug {BUG_OF[args.name]}  (the baseline defaults to "
          f"{BASE_VERSION}, the release it patches; leave --bug out to judge every bug)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
