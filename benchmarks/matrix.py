"""Wall-clock of the default ``matrix`` (no ``--sdk``: every release it judges by default) cold vs
warm, and where the time of one env goes.

cold-all: empty env cache *and* empty uv cache (a fresh CI machine: sdists downloaded and built);
cold-envs: empty env cache, uv's cache as it is (a developer's first matrix); warm: every env cached
(only ``check`` runs), once with a fresh interpreter per check (``PYTEST_AGENTSDK_PRELOAD=0``) and
once as it runs by default (checks forked from a preloading server). Same seed everywhere, so the
runs do the same judging work. ``--all`` times ``matrix --all`` (every release since 0.1.44) the
same way.

Each run reports wall-clock and the CPU seconds of everything it started. The breakdown then runs,
one at a time in each env the warm run used, and takes the CPU seconds of: the bare interpreter, the
imports a check makes (the SDK, Hypothesis, trio, pytest, the harness), and the whole check; the
judging is the check less its imports. Env builds are the ``env ... ready in`` lines of the cold runs.

    python benchmarks/matrix.py [--examples N] [--skip-cold-all] [--all] [--judge-each] [--no-breakdown]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What a check imports before it judges: the harness's command, every scenario, the SDK.
IMPORTS = "import claude_agent_sdk, pytest_agentsdk.__main__, pytest_agentsdk.bugs as b; [b.scenario(n) for n in b.available()]"


def cpu_seconds() -> float:
    """User + system CPU of every finished child process and their children (uv, the checks)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_matrix(cache: Path, uv_cache: Path | None, examples: int, everything: bool, flags: list[str],
               extra: dict[str, str] | None = None) -> tuple[float, float, list[dict], list[float]]:
    """(wall seconds, CPU seconds, the reports, each env build's seconds) of one matrix run."""
    env = {**os.environ, "PYTEST_AGENTSDK_CACHE": str(cache), "PYTHONPATH": str(REPO), **(extra or {})}
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    cmd = [sys.executable, "-m", "pytest_agentsdk", "matrix", "--json", "--seed", "0", "--examples", str(examples)]
    cmd += (["--all"] if everything else []) + flags
    started, cpu = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if proc.returncode not in (0, 1):
        sys.exit(f"matrix failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    builds = [float(s) for s in re.findall(r"env for .* ready in ([\d.]+) s", proc.stderr)]
    return elapsed, cpu, json.loads(proc.stdout), builds


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """CPU seconds of ``cmd`` (steadier than wall-clock on a shared machine)."""
    cpu = cpu_seconds()
    subprocess.run(cmd, env=env, capture_output=True, check=False)
    return cpu_seconds() - cpu


def breakdown(cache: Path, reports: list[dict], examples: int) -> dict[str, float]:
    """CPU seconds summed over the envs of ``reports``: interpreter, start-up + imports, judging."""
    sys.path.insert(0, str(REPO))
    os.environ["PYTEST_AGENTSDK_CACHE"] = str(cache)
    from pytest_agentsdk import envs

    env = envs.env_environ()
    totals = {"interpreter": 0.0, "imports": 0.0, "judging": 0.0}
    for report in reports:
        if not report["subject"].get("env"):
            continue  # judged without an env (unsupported release)
        python = str(Path(report["subject"]["env"]) / "bin" / "python")
        bare = timed([python, "-c", "pass"], env)
        imports = timed([python, "-c", IMPORTS], env)
        check = timed([python, "-m", "pytest_agentsdk", "check", "--json", "--quiet", "--seed", "0", "--examples", str(examples)], env)
        totals["interpreter"] += bare
        totals["imports"] += imports - bare
        totals["judging"] += check - imports
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30, help="check's examples per bug/model/backend (default 30)")
    parser.add_argument("--skip-cold-all", action="store_true", help="skip the run with an empty uv cache (downloads sdists)")
    parser.add_argument("--all", action="store_true", help="time matrix --all instead of the default subjects")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-env breakdown after the warm run")
    parser.add_argument("--judge-each", action="store_true", help="pass matrix --judge-each: every release judged in its own env")
    args = parser.parse_args()
    print(f"matrix {'--all' if args.all else '(default subjects)'}{' --judge-each' if args.judge_each else ''}  ({os.cpu_count()} cores, --examples {args.examples}, seed 0)", flush=True)
    with tempfile.TemporaryDirectory(prefix="agentsdk-bench-") as tmp:
        cache = Path(tmp, "envs-b")
        # (what the row says, its short name, env cache, uv cache, extra environment)
        runs: list[tuple[str, str, Path, Path | None, dict[str, str]]] = []
        if not args.skip_cold_all:
            runs.append(("cold-all (empty env + uv cache)", "cold-all", Path(tmp, "envs-a"), Path(tmp, "uv"), {}))
        runs += [("cold-envs (empty env cache)", "cold-envs", cache, None, {}),
                 ("warm, a fresh interpreter per check", "warm-fresh", cache, None, {"PYTEST_AGENTSDK_PRELOAD": "0"}),
                 ("warm (envs cached)", "warm", cache, None, {})]
        rows, compared = [], []
        for name, short, envs_cache, uv_cache, extra in runs:
            seconds, cpu, reports, builds = run_matrix(envs_cache, uv_cache, args.examples, args.all, ["--judge-each"] if args.judge_each else [], extra)
            built = f"  {len(builds)} envs built, {sum(builds):6.1f} s of builds" if builds else ""
            print(f"{name:<34} {seconds:7.1f} s wall {cpu:7.1f} s CPU  {len(reports)} reports{built}", flush=True)
            rows.append((short, seconds, reports))
            compared.append(json.dumps([report["results"] for report in reports], sort_keys=True)
                            .replace(str(envs_cache), "<env cache>"))  # its path shows in evidence: no verdict
        warm = rows[-1][1]
        print("  ".join(f"{short} {seconds / warm:.2f}x warm" for short, seconds, _ in rows))
        differ = [short for (short, _, _), results in zip(rows, compared) if results != compared[-1]]
        print("every run gave the same reports" if not differ else
              f"THE RUNS GAVE DIFFERENT REPORTS ({', '.join(differ)} against warm): a speed-up broke a verdict")
        if not args.no_breakdown:
            parts = breakdown(cache, rows[-1][2], args.examples)
            total = sum(parts.values())
            print(f"CPU per env in a fresh interpreter (as without preloading), one at a time, summed over "
                  f"{sum(1 for r in rows[-1][2] if r['subject'].get('env'))} envs:")
            for name, seconds in parts.items():
                print(f"  {name:<12} {seconds:7.1f} s  {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
