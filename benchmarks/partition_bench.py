"""Partitioned solve against the single-process solve: speedup and placed-work loss.

Methods, each at the same time limit on ``profile(size, seed)``, each in a fresh process (the
instance is generated there, before the clock starts):
  single         placement.solve
  local-G        solve_partitioned(G groups, executor="local"): a process pool of 2
  ray-G          solve_partitioned(G groups, executor="ray"): a local Ray started per solve
  cluster-G      solve_partitioned(G groups, executor="ray", address=...): a Ray head started
                 once by this script on loopback (2 CPUs), as a cluster already running would be

Wall time is around the solve call only (Ray start-up or connection included). Reported per
size and method: medians over the seeds of wall time, speedup (single wall / method wall, per
seed), placed work, its change against the single solve of the same seed, the gap against the
method's own bound, and workloads left out by partitioning. The load average before each run
is recorded, so that runs beside other work show.

Run: .venv/bin/python benchmarks/partition_bench.py [--sizes L,XL] [--seeds 2] [--groups 2,4]
     [--time-limit 30] [--methods single,local,ray,cluster] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def run_one(size: str, seed: int, method: str, groups: int, time_limit_s: float, address: str | None) -> dict:
    """One solve in this process; the record the table reads."""
    from placement import solve
    from placement.core.verify import verify
    from placement.generator import profile
    from placement.run.partition import solve_partitioned_stats

    problem = profile(size, seed)
    problem = replace(problem, options=replace(problem.options, time_limit_s=time_limit_s))
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    rec: dict = {"size": size, "seed": seed, "method": method, "groups": groups, "load_1m": round(load, 2)}
    if method == "single":
        plan = solve(problem)
    else:
        executor = "local" if method.startswith("local") else "ray"
        plan, stats = solve_partitioned_stats(problem, groups, executor, address, time_limit_s)
        rec.update(
            spanning=stats.spanning_workloads,
            left_out_partitioning=stats.left_out_partitioning,
            partition_cost_bound=stats.partition_cost_bound,
            solve_s=round(stats.solve_s, 2),
            combine_s=round(stats.combine_s, 2),
            waves=stats.waves,
            nodes=sorted({p.node[:8] for p in stats.parts}),
            parts=[(p.status, p.placed_work, round(p.wall_s, 1)) for p in stats.parts],
            part_limit_s=round(stats.part_time_limit_s, 1),
            notes=list(stats.notes),
        )
    rec["wall_s"] = round(time.monotonic() - t0, 2)
    rec.update(
        placed_work=plan.objective.placed_work,
        bound=plan.info.bound,
        gap=plan.info.gap,
        status=plan.info.status.value,
        valid=verify(problem, plan) == [],
        gpus=sum(n.gpu_count for n in problem.fleet.nodes),
    )
    return rec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_head(num_cpus: int = 2):  # type: ignore[no-untyped-def]
    """A Ray head on loopback in its own process group; killed (the group) on exit."""
    tmp = tempfile.mkdtemp(prefix="rayb", dir="/tmp")
    port = _free_port()
    log_path = Path(tmp) / "head.log"
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=false",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--temp-dir={tmp}",
        "--disable-usage-stats",
    ]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while b"Ray runtime started" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Ray head did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def table(records: list[dict]) -> str:
    single = {(r["size"], r["seed"]): r for r in records if r["method"] == "single"}
    rows = [
        "size  method      seeds  wall s  speedup  placed work  vs single  gap     left out (part.)  load",
    ]
    keys = sorted({(r["size"], r["method"]) for r in records}, key=lambda k: (k[0], k[1] != "single", k[1]))
    for size, method in keys:
        rs = [r for r in records if r["size"] == size and r["method"] == method]
        base = [single.get((size, r["seed"])) for r in rs]
        speed = [b["wall_s"] / r["wall_s"] for r, b in zip(rs, base, strict=True) if b]
        loss = [
            (r["placed_work"] - b["placed_work"]) / b["placed_work"]
            for r, b in zip(rs, base, strict=True)
            if b
        ]
        med = statistics.median
        rows.append(
            f"{size:<5} {method:<11} {len(rs):>5}  {med(r['wall_s'] for r in rs):>6.1f}  "
            + (f"{med(speed):>6.2f}x" if speed and method != "single" else f"{'--':>7}")
            + f"  {med(r['placed_work'] for r in rs):>11.4g}  "
            + (f"{med(loss) * 100:>+8.2f}%" if loss and method != "single" else f"{'--':>9}")
            + f"  {med((r['gap'] or 0) for r in rs) * 100:>5.2f}%  "
            + f"{med(r.get('left_out_partitioning', 0) for r in rs):>16}  "
            + f"{max(r['load_1m'] for r in rs):>4.1f}"
            + ("" if all(r["valid"] for r in rs) else "  INVALID")
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="L,XL")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--groups", default="2")
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--methods", default="single,local,ray,cluster")
    ap.add_argument("--out", default="partition_bench.jsonl")
    ap.add_argument("--table-only", action="store_true", help="print the table of --out and stop")
    ap.add_argument("--one", nargs=6, metavar=("SIZE", "SEED", "METHOD", "GROUPS", "LIMIT", "ADDRESS"))
    args = ap.parse_args()
    if args.one:  # a worker: one solve, one JSON line on stdout
        size, seed, method, groups, limit, address = args.one
        rec = run_one(size, int(seed), method, int(groups), float(limit), None if address == "-" else address)
        print(json.dumps(rec))
        return
    out = Path(args.out)
    if args.table_only:
        print(table([json.loads(line) for line in out.read_text().splitlines() if line.strip()]))
        return
    methods = args.methods.split(",")
    plan = []
    for size in args.sizes.split(","):
        for seed in range(args.seeds):
            for m in methods:
                if m == "single":
                    plan.append((size, seed, "single", 0))
                else:
                    plan.extend((size, seed, f"{m}-{g}", int(g)) for g in args.groups.split(","))
    head = ray_head() if "cluster" in methods else contextlib.nullcontext(None)
    records = []
    with head as address:
        for size, seed, method, groups in plan:
            addr = address if method.startswith("cluster") else "-"
            cmd = [
                sys.executable,
                __file__,
                "--one",
                size,
                str(seed),
                method,
                str(groups),
                str(args.time_limit),
            ]
            r = subprocess.run([*cmd, addr or "-"], capture_output=True, text=True, cwd=REPO)
            if r.returncode != 0:
                print(f"{size} {seed} {method}: failed\n{r.stderr[-2000:]}", file=sys.stderr)
                continue
            rec = json.loads(r.stdout.strip().splitlines()[-1])
            records.append(rec)
            with out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(
                f"{size} seed {seed} {method:<10} {rec['wall_s']:6.1f} s  placed {rec['placed_work']:.4g}  "
                f"gap {(rec['gap'] or 0) * 100:.2f}%  load {rec['load_1m']}",
                file=sys.stderr,
                flush=True,
            )
    print(table(records))


if __name__ == "__main__":
    main()
