"""Wall-clock of ``matrix --sdk 0.1.48 --sdk 0.1.50 --sdk 0.1.51 --sdk latest`` cold vs warm.

cold-all: empty env cache *and* empty uv cache (a fresh CI machine: sdists downloaded and built);
cold-envs: empty env cache, uv's cache as it is (a developer's first matrix); warm: every env cached
(only ``check`` runs). Same seed everywhere, so the runs do the same judging work.

    python benchmarks/matrix.py [--examples N] [--skip-cold-all]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUBJECTS = ("0.1.48", "0.1.50", "0.1.51", "latest")


def run_matrix(cache: Path, uv_cache: Path | None, examples: int) -> tuple[float, int]:
    env = {**os.environ, "PYTEST_AGENTSDK_CACHE": str(cache)}
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    cmd = [sys.executable, "-m", "pytest_agentsdk", "matrix", "--json", "--quiet", "--seed", "0", "--examples", str(examples)]
    for subject in SUBJECTS:
        cmd += ["--sdk", subject]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"matrix failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return elapsed, len(json.loads(proc.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30, help="check's examples per bug/model/backend (default 30)")
    parser.add_argument("--skip-cold-all", action="store_true", help="skip the run with an empty uv cache (downloads sdists)")
    args = parser.parse_args()
    print(f"matrix --sdk {' --sdk '.join(SUBJECTS)}  ({os.cpu_count()} cores, --examples {args.examples})")
    with tempfile.TemporaryDirectory(prefix="agentsdk-bench-") as tmp:
        rows = []
        if not args.skip_cold_all:
            rows.append(("cold-all (empty env + uv cache)", *run_matrix(Path(tmp, "envs-a"), Path(tmp, "uv"), args.examples)))
        cache = Path(tmp, "envs-b")
        rows.append(("cold-envs (empty env cache)", *run_matrix(cache, None, args.examples)))
        rows.append(("warm (envs cached)", *run_matrix(cache, None, args.examples)))
    warm = rows[-1][1]
    for name, seconds, reports in rows:
        print(f"{name:<34} {seconds:7.1f} s  {reports} reports  {seconds / warm:5.2f}x warm")


if __name__ == "__main__":
    main()
