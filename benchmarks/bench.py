"""``fleetplace bench``: every method on the same instances, side by side, each run in a fresh process.

Instances: ``placement.generator.profile(size, seed)`` for S, M, L and XL (and ``tiny``, a
48-GPU fleet with the same knobs, for tests), seeds ``0 .. seeds-1``; ``alibaba`` takes
its records from ``benchmarks.alibaba_bench`` (the FGD protocol and the batch one).

Methods: ``engine`` (``placement.solve``), ``first_fit_decreasing``, ``best_fit`` and ``fgd``
(``placement.construct.heuristics``), ``pair_mip`` (``benchmarks.pairmip``: one boolean per (replica,
candidate node, power level), CP-SAT, only on tiny, S and M) and, with ``--executor``,
``partitioned`` (``placement.run.partition.solve_partitioned`` over ``PARTITION_GROUPS``
groups of sites, local processes or Ray).

Each (instance, seed, method) runs in a fresh ``python -m benchmarks.bench --child``
process that builds the instance, runs the method and saves the plan (pickle) and its
timings; the parent reads the child's own peak RSS (``os.wait4``'s ``ru_maxrss``),
rebuilds the instance, and recomputes everything from the saved plan: ``placement.verify``
and the figures below. So no method is trusted for its own numbers, and one method's
memory never counts against another.

Record fields (``DIR/results.json`` is a list of them)
------------------------------------------------------
* ``instance``, ``seed``, ``method``, ``gpus`` (GPUs in the fleet), ``ready_gpus``,
  ``nodes``, ``replicas_max`` (sum of ``max_replicas``), ``status``, ``error``;
* ``wall_s``: the method's call until it returns a verified plan (a heuristic: placing
  plus ``plan_from``'s budgets, reasons within what is left of the time limit, and
  verification, as the engine does); instance
  generation and process start are not counted. ``place_s``: a heuristic's placing alone;
* ``peak_rss_mib``: peak resident memory of the child process (the instance included);
* ``placed_gpus``: GPUs the plan holds, a fractional replica counting ``gpu_milli / 1000``;
  ``allocation_pct``: ``placed_gpus`` / GPUs of READY nodes * 100;
* ``stranded_power_kw``: the sum, over power domains none of whose READY nodes has a
  GPU left with nothing on it, of the domain's headroom (usable minus IT draw, kW, not
  below 0): power the rack may still draw that no new replica can use, since there is no
  free GPU to put it on (a GPU shared by fractional replicas runs uncapped already, so
  its leftover share needs no more power);
* ``objective``: tier 1, ``placed_work``; ``method_bound``: the bound the method proved
  itself (engine, partitioned, pair MIP), else null;
* ``bound``: the best valid upper bound on ``placed_work`` known for the instance and seed:
  the least of every method's proven bound, the LP relaxation of
  ``placement.run.partition.relaxation_bound`` (when present) and the demand bound (every
  replica at ``max_replicas`` at the best throughput); ``gap = (bound - objective) / bound``
  against it, for every method alike;
* ``verified``: ``placement.verify`` found nothing on the saved plan (false when no plan).

The table shows medians over seeds; ``time_vs_size.png`` (log-log) and
``quality_vs_time.png`` (objective / bound against wall time) are written next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from placement.core.budgets import FULL_GPU_MILLI
from placement.core.domain import NodeState, Plan, Problem, SolveStatus

log = logging.getLogger(__name__)

SIZES = ("tiny", "S", "M", "L", "XL")
TINY_GPUS = 48
HEURISTIC_METHODS = ("first_fit_decreasing", "best_fit", "fgd")
MIP_SIZES = frozenset({"tiny", "S", "M"})
PARTITION_GROUPS = 4
FIELDS = (
    "instance",
    "method",
    "wall_s",
    "peak_rss_mib",
    "placed_gpus",
    "allocation_pct",
    "stranded_power_kw",
    "objective",
    "bound",
    "gap",
    "verified",
)
FIGURES = FIELDS[2:-1]  # the numbers of a record (wall_s .. gap), taken as medians over seeds


def instance(size: str, seed: int, time_limit_s: float) -> Problem:
    """The generated instance ``size`` for ``seed``, with the time limit and seed in its options.

    The bench measures placement quality: the generated workloads' current replicas (a first fit,
    for 30% of them) rank in the moves tier below placed work and are not priced against it
    (``price_moves`` False); ``benchmarks.replan_bench`` measures re-planning."""
    from placement.generator import PROFILES, generate, profile

    if size == "tiny":
        problem = generate(TINY_GPUS, seed, **dict(PROFILES["S"].knobs))
    else:
        problem = profile(size, seed)
    opts = replace(problem.options, time_limit_s=time_limit_s, seed=seed, price_moves=False)
    return replace(problem, options=opts)


def methods_for(size: str, executor: str | None) -> list[str]:
    out = ["engine", *HEURISTIC_METHODS]
    if size in MIP_SIZES:
        out.append("pair_mip")
    if executor is not None and _has_partition():
        out.append("partitioned")
    return out


def _has_partition() -> bool:
    try:
        import placement.run.partition  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------- child


def _child(spec: dict[str, Any]) -> int:
    """Run one method on one instance; save the plan and the timings (the parent measures the rest)."""
    problem = instance(spec["size"], spec["seed"], spec["time_limit_s"])
    method = spec["method"]
    out = Path(spec["out"])
    meta: dict[str, Any] = {"status": "", "error": "", "method_bound": None, "place_s": None}
    plan: Plan | None = None
    t0 = time.perf_counter()
    try:
        if method == "engine":
            from placement import solve

            plan = solve(problem)
        elif method in HEURISTIC_METHODS:
            from placement.construct.heuristics import HEURISTICS, plan_from
            from placement.core.errors import PlanRejected

            placements = HEURISTICS[method](problem)
            meta["place_s"] = time.perf_counter() - t0
            # reasons for unplaced work within what is left of the time limit, as the engine's
            until = time.monotonic() + max(0.0, spec["time_limit_s"] - meta["place_s"])
            try:  # verified here too, as the engine verifies its plan before returning it
                plan = plan_from(problem, placements, method, wall_s=meta["place_s"], explain_until=until)
            except PlanRejected as e:
                meta["error"] = str(e)[:500]
                plan = plan_from(
                    problem, placements, method, wall_s=meta["place_s"], checked=False, explain_until=until
                )
        elif method == "pair_mip":
            from benchmarks.pairmip import solve_pairs
            from placement.construct.heuristics import plan_from

            res = solve_pairs(problem, spec["time_limit_s"], workers=problem.options.workers)
            meta["method_bound"] = res.bound
            meta["note"] = res.note
            meta["booleans"] = res.booleans
            if res.status != "NO_SOLUTION":
                plan = plan_from(problem, res.placements, method, checked=False)
                plan = replace(
                    plan,
                    info=replace(
                        plan.info,
                        status=SolveStatus.OPTIMAL if res.status == "OPTIMAL" else SolveStatus.FEASIBLE,
                        bound=res.bound,
                    ),
                )
            else:
                meta["status"] = "NO_SOLUTION"
        elif method == "partitioned":
            from placement.run.partition import solve_partitioned

            plan = solve_partitioned(
                problem,
                PARTITION_GROUPS,
                executor=spec["executor"],
                address=spec.get("address"),
                time_limit_s=spec["time_limit_s"],
            )
        else:
            raise ValueError(f"unknown method {method}")
    except Exception as e:  # recorded, the parent reports it
        log.exception("%s failed", method)
        meta["error"] = f"{type(e).__name__}: {e}"[:500]
    meta["wall_s"] = time.perf_counter() - t0
    if plan is not None:
        meta["status"] = plan.info.status.value
        if method != "pair_mip":
            meta["method_bound"] = plan.info.bound
        with open(out / "plan.pkl", "wb") as f:
            pickle.dump(plan, f, protocol=pickle.HIGHEST_PROTOCOL)
    (out / "meta.json").write_text(json.dumps(meta))
    return 0


# --------------------------------------------------------------------------- parent


def _run_child(spec: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], Plan | None, float]:
    """Start the child, wait for it (killing it past ``timeout_s``), return meta, plan and peak RSS MiB."""
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    for name in ("plan.pkl", "meta.json"):
        (out / name).unlink(missing_ok=True)
    with open(out / "child.log", "w") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench", "--child", json.dumps(spec)],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
        )
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mib = usage.ru_maxrss / 1024.0  # KiB on Linux
    meta: dict[str, Any]
    try:
        meta = json.loads((out / "meta.json").read_text())
    except (OSError, ValueError):
        meta = {"status": "", "error": f"child exited with {proc.returncode} and no result (see child.log)"}
    plan = None
    if (out / "plan.pkl").exists():
        with open(out / "plan.pkl", "rb") as f:
            plan = pickle.load(f)
    return meta, plan, rss_mib


def placed_gpus(plan: Plan) -> float:
    return sum(p.gpu_milli * len(p.gpu_indices) for p in plan.placements) / FULL_GPU_MILLI


def ready_gpus(problem: Problem) -> int:
    return sum(n.gpu_count for n in problem.fleet.nodes if n.state is NodeState.READY)


def stranded_power_kw(problem: Problem, plan: Plan) -> float:
    """Headroom of the power domains none of whose READY nodes has an unused GPU (see the module docstring)."""
    ready = {n.name for n in problem.fleet.nodes if n.state is NodeState.READY}
    domain_of = {n.name: n.power_domain for n in problem.fleet.nodes}
    has_free: set[str] = set()
    for g in plan.budgets.gpus:
        if g.used_milli == 0 and g.node in ready:
            has_free.add(domain_of[g.node])
    return sum(max(0.0, b.headroom_kw) for b in plan.budgets.power_domains if b.name not in has_free)


def demand_bound(problem: Problem) -> float:
    """Every workload at max_replicas at its best throughput: a valid, loose upper bound on placed_work."""
    best = max(
        (lv.relative_throughput_pct for g in problem.fleet.gpu_types for lv in g.power_levels), default=0
    )
    return float(sum(w.priority * w.work_milli * best * w.max_replicas for w in problem.workloads))


def relaxation_bound(problem: Problem) -> float | None:
    try:
        from placement.bounds.bound import relaxation_bound as lp
    except ImportError:
        return None
    try:
        return lp(problem)
    except Exception:
        log.exception("relaxation bound failed")
        return None


def _progress(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def run_instance(
    size: str,
    seed: int,
    out_dir: Path,
    time_limit_s: float,
    executor: str | None,
    address: str | None,
    methods: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    from placement.core.verify import verify

    problem = instance(size, seed, time_limit_s)
    n_ready = ready_gpus(problem)
    base: dict[str, Any] = {
        "instance": size,
        "seed": seed,
        "gpus": sum(n.gpu_count for n in problem.fleet.nodes),
        "ready_gpus": n_ready,
        "nodes": len(problem.fleet.nodes),
        "replicas_max": sum(w.max_replicas for w in problem.workloads),
        "time_limit_s": time_limit_s,
    }
    _progress(
        f"{size} seed {seed}: {base['gpus']:,} GPUs, {base['nodes']:,} nodes, "
        f"{len(problem.workloads):,} workloads, {base['replicas_max']:,} replicas at max"
    )
    records: list[dict[str, Any]] = []
    bounds: list[float] = [demand_bound(problem)]
    lp = relaxation_bound(problem)
    if lp is not None:
        bounds.append(lp)
    applicable = methods_for(size, executor)
    for method in [m for m in methods if m in applicable] if methods else applicable:
        _progress(f"{size} seed {seed}: {method} ...")
        spec = {
            "size": size,
            "seed": seed,
            "method": method,
            "time_limit_s": time_limit_s,
            "executor": executor or "local",
            "address": address,
            "out": str(out_dir / "runs" / f"{size}-{seed}-{method}"),
        }
        meta, plan, rss = _run_child(spec, timeout_s=3 * time_limit_s + 300)
        rec: dict[str, Any] = {
            **base,
            "method": method,
            "wall_s": round(float(meta.get("wall_s") or 0.0), 3),
            "place_s": None if meta.get("place_s") is None else round(meta["place_s"], 3),
            "peak_rss_mib": round(rss, 1),
            "status": meta.get("status") or ("ERROR" if meta.get("error") else "NO_SOLUTION"),
            "error": meta.get("error", ""),
            "note": meta.get("note", ""),
            "method_bound": meta.get("method_bound"),
        }
        if plan is not None:
            violations = verify(problem, plan)
            pg = placed_gpus(plan)
            rec.update(
                placed_gpus=round(pg, 3),
                allocation_pct=round(100.0 * pg / max(1, n_ready), 3),
                stranded_power_kw=round(stranded_power_kw(problem, plan), 3),
                objective=plan.objective.placed_work,
                verified=not violations,
                violations=[str(v) for v in violations[:5]],
            )
        else:
            rec.update(
                placed_gpus=0.0, allocation_pct=0.0, stranded_power_kw=None, objective=None, verified=False
            )
        # a method's bound is on its tier 1: placed work less the moves' price where moves are
        # priced (generated workloads run today), so it bounds placed work only where they are not
        if (
            rec["method_bound"] is not None
            and rec["status"] in ("OPTIMAL", "FEASIBLE", "NO_SOLUTION")
            and not problem.moves_priced
        ):
            bounds.append(float(rec["method_bound"]))
        records.append(rec)
        _progress(
            f"{size} seed {seed}: {method} {rec['status']} in {rec['wall_s']:.1f} s, "
            f"{rec['peak_rss_mib']:.0f} MiB, {rec['placed_gpus']:,.1f} GPUs ({rec['allocation_pct']:.1f}%), "
            f"verified {rec['verified']}{' ' + rec['error'] if rec['error'] else ''}"
        )
    best = min(b for b in bounds if b is not None and b >= 0)
    for rec in records:
        rec["bound"] = best
        obj = rec["objective"]
        rec["gap"] = None if obj is None else (round(max(0.0, (best - obj) / best), 6) if best > 0 else 0.0)
    return records


# ---------------------------------------------------------------------------- output


def _median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over seeds per (instance, method), in first-seen order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(str(r["instance"]), str(r["method"]))].append(r)
    rows = []
    for (inst, method), rs in groups.items():
        row: dict[str, Any] = {"instance": inst, "method": method, "seeds": len(rs)}
        for k in ("gpus", *FIGURES):
            row[k] = _median([r.get(k) for r in rs])  # type: ignore[misc]
        row["verified"] = all(bool(r.get("verified")) for r in rs)
        row["status"] = ",".join(sorted({str(r.get("status", "")) for r in rs}))
        rows.append(row)
    return rows


def _fmt(x: Any, spec: str) -> str:
    if x is None:
        width = "".join(c for c in spec.split(".")[0].split(",")[0] if c.isdigit())
        return "-".rjust(int(width or 1))
    return format(x, spec)


def table(records: Sequence[dict[str, Any]]) -> str:
    rows = summarise(records)
    head = (
        f"{'instance':<10} {'method':<22} {'seeds':>5} {'wall s':>8} {'RSS MiB':>8} {'GPUs placed':>12} "
        f"{'alloc %':>8} {'stranded kW':>11} {'placed_work':>16} {'gap %':>7} {'verified':>8}  status"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        gap = None if r["gap"] is None else 100 * r["gap"]
        lines.append(
            f"{r['instance']:<10} {r['method']:<22} {r['seeds']:>5} {_fmt(r['wall_s'], '8.2f')} "
            f"{_fmt(r['peak_rss_mib'], '8.0f')} {_fmt(r['placed_gpus'], '12,.1f')} {_fmt(r['allocation_pct'], '8.2f')} "
            f"{_fmt(r['stranded_power_kw'], '11.1f')} {_fmt(r['objective'], '16,.0f')} {_fmt(gap, '7.2f')} "
            f"{'yes' if r['verified'] else 'NO':>8}  {r['status']}"
        )
    return "\n".join(lines)


def plots(records: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """time_vs_size.png (log-log, medians per method) and quality_vs_time.png (objective / bound)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summarise(records) if r.get("gpus")]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    firsts = []
    for m in methods:
        # only runs that returned a verified plan: a refusal or a crash is no point on a time curve
        pts = sorted(
            (r["gpus"], r["wall_s"]) for r in rows if r["method"] == m and r["wall_s"] and r["verified"]
        )
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=m)
            firsts.append(pts[0])
    sizes = sorted({r["gpus"] for r in rows})
    at_smallest = [p[1] for p in firsts if p[0] == sizes[0]] if sizes else []
    if len(sizes) > 1 and at_smallest:
        x0, y0 = sizes[0], min(at_smallest)
        ax.plot(sizes, [y0 * x / x0 for x in sizes], "k--", lw=0.8, alpha=0.5, label="linear in size")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("fleet size (GPUs)")
    ax.set_ylabel("wall time to a verified plan (s)")
    ax.set_title("Time against fleet size (median over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "time_vs_size.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>ph"
    instances = list(dict.fromkeys(r["instance"] for r in rows))
    for mi, m in enumerate(methods):
        xs, ys = [], []
        for r in rows:
            if r["method"] == m and r["objective"] is not None and r["bound"] and r["wall_s"]:
                xs.append(r["wall_s"])
                ys.append(100.0 * r["objective"] / r["bound"])
        if xs:
            ax.scatter(xs, ys, marker=markers[mi % len(markers)], label=m, s=40)
    for r in rows:
        if r["objective"] is not None and r["bound"] and r["wall_s"]:
            ax.annotate(
                r["instance"], (r["wall_s"], 100.0 * r["objective"] / r["bound"]), fontsize=7, alpha=0.7
            )
    ax.set_xscale("log")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("placed work / best bound (%)")
    ax.set_title(f"Plan quality against time ({', '.join(instances)})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "quality_vs_time.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


# ------------------------------------------------------------------------------ main


def parse_sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    canon = {s.lower(): s for s in (*SIZES, "alibaba")}
    bad = [s for s in sizes if s.lower() not in canon]
    if bad or not sizes:
        raise ValueError(f"unknown size {', '.join(bad) or text!r}; one or more of S, M, L, XL, alibaba")
    return [canon[s.lower()] for s in sizes]


def run(
    sizes: Sequence[str],
    out_dir: Path,
    time_limit_s: float,
    seeds: int,
    executor: str | None = None,
    address: str | None = None,
    methods: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for size in sizes:
        if size == "alibaba":
            try:
                from benchmarks.alibaba_bench import alibaba_records
            except ImportError:
                _progress("alibaba: benchmarks.alibaba_bench is not there yet; skipped")
                continue
            _progress("alibaba: running benchmarks.alibaba_bench (in this process)")
            records.extend(alibaba_records(time_limit_s))
            continue
        for seed in range(seeds):
            records.extend(run_instance(size, seed, out_dir, time_limit_s, executor, address, methods))
            (out_dir / "results.json").write_text(json.dumps(records, indent=1, default=str))
    (out_dir / "results.json").write_text(json.dumps(records, indent=1, default=str))
    return records


def main(args: argparse.Namespace) -> int:
    sizes = parse_sizes(args.size)
    out_dir = Path(args.out)
    methods = [m for m in (getattr(args, "methods", None) or "").split(",") if m] or None
    records = run(sizes, out_dir, args.time_limit, args.seeds, args.executor, args.address, methods)
    sys.stdout.write(table(records) + "\n")
    for p in plots(records, out_dir):
        sys.stdout.write(f"wrote {p}\n")
    sys.stdout.write(f"wrote {out_dir / 'results.json'} ({len(records)} records)\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        sys.exit(_child(json.loads(sys.argv[2])))
    sys.stderr.write("usage: fleetplace bench ... (this module's --child mode is internal)\n")
    sys.exit(2)
