"""Which solver should be the default? A small benchmark on placement-like integer programs.

Programs: random generalized-assignment problems shaped like tier 1 of placement.
Jobs (workloads) go to at most one agent (node) or stay unplaced; each agent has two
capacities (GPU thousandths and host memory), agents sit in power domains with a cap on
the summed power of their jobs, and the objective maximises the placed value
(priority x size x a per-agent throughput factor), all integers.

Solvers, each at the same time limit:
  cpsat   placement.exact.backends CP-SAT session (2 workers)
  cbc     placement.exact.backends CBC via PuLP (2 threads)
  highs   OR-Tools MathOpt with HiGHS (single thread: MathOpt refuses threads for HiGHS)
  scip    OR-Tools MathOpt with SCIP (single thread)

Reported per size and solver: medians over the seeds of the objective reached, the proven
bound, the gap (bound - objective) / bound, and wall time; "opt" counts proven optima.

Run: .venv/bin/python benchmarks/backend_choice.py [--time-limit 10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from placement.core.domain import Backend, SolveStatus
from placement.exact.backends import get_backend
from placement.exact.model.ir import Direction, IntegerProgram, Sense

SIZES = [(60, 12), (200, 40), (600, 100)]  # (jobs, agents)


@dataclass(frozen=True)
class Outcome:
    objective: float | None
    bound: float | None
    optimal: bool
    wall_s: float

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None or self.bound == 0:
            return None
        return (self.bound - self.objective) / abs(self.bound)


def build(jobs: int, agents: int, seed: int) -> IntegerProgram:
    rng = random.Random(seed)
    ip = IntegerProgram()
    domains = max(2, agents // 4)
    domain_of = [a % domains for a in range(agents)]
    gpu_cap = [rng.choice([4000, 8000]) for _ in range(agents)]
    mem_cap = [rng.choice([512, 1024]) for _ in range(agents)]
    factor = [rng.choice([70, 85, 100]) for _ in range(agents)]
    size = [rng.choice([250, 500, 1000, 1000, 2000, 4000]) for _ in range(jobs)]
    mem = [rng.randint(16, 256) for _ in range(jobs)]
    prio = [rng.randint(1, 5) for _ in range(jobs)]
    watts = [s * rng.randint(30, 70) // 100 for s in size]
    x: dict[tuple[int, int], int] = {}
    for j in range(jobs):
        allowed = rng.sample(range(agents), k=max(2, agents // 3))  # the candidate filter's work
        for a in allowed:
            x[j, a] = ip.new_bool(f"x[{j},{a}]")
        ip.add(f"one[{j}]", {x[j, a]: 1 for a in allowed}, Sense.LE, 1)
    for a in range(agents):
        on_a = [j for j in range(jobs) if (j, a) in x]
        ip.add(f"gpu[{a}]", {x[j, a]: size[j] for j in on_a}, Sense.LE, gpu_cap[a])
        ip.add(f"mem[{a}]", {x[j, a]: mem[j] for j in on_a}, Sense.LE, mem_cap[a])
    total_watts = sum(watts)
    for d in range(domains):
        terms = {v: watts[j] for (j, a), v in x.items() if domain_of[a] == d}
        ip.add(f"power[{d}]", terms, Sense.LE, int(total_watts / domains * 0.35))
    ip.add_objective(
        "placed_work", Direction.MAXIMIZE, {v: prio[j] * size[j] * factor[a] for (j, a), v in x.items()}
    )
    return ip


def run_backend(backend: Backend, workers: int) -> Callable[[IntegerProgram, float, int], Outcome]:
    def run(ip: IntegerProgram, limit_s: float, seed: int) -> Outcome:
        t0 = time.monotonic()
        session = get_backend(backend).load(ip, seed=seed, workers=workers)
        res = session.solve(ip.objectives[0], max(0.1, limit_s - (time.monotonic() - t0)), None, None, None)
        return Outcome(
            objective=None if res.objective is None else float(res.objective),
            bound=res.bound,
            optimal=res.status is SolveStatus.OPTIMAL,
            wall_s=time.monotonic() - t0,
        )

    return run


def run_mathopt(solver_name: str) -> Callable[[IntegerProgram, float, int], Outcome] | None:
    try:
        from ortools.math_opt.python import mathopt
    except ImportError:
        return None
    solver_type = {"highs": mathopt.SolverType.HIGHS, "scip": mathopt.SolverType.GSCIP}[solver_name]

    def run(ip: IntegerProgram, limit_s: float, seed: int) -> Outcome:
        t0 = time.monotonic()
        model = mathopt.Model(name="bench")
        xs = [
            model.add_integer_variable(lb=lb, ub=ub, name=n)
            for n, lb, ub in zip(ip.names, ip.lower, ip.upper, strict=True)
        ]
        for c in ip.constraints:
            expr = mathopt.LinearSum(a * xs[i] for i, a in zip(c.var_indices, c.coefs, strict=True))
            if c.sense is Sense.LE:
                model.add_linear_constraint(expr <= c.rhs, name=c.name)
            elif c.sense is Sense.GE:
                model.add_linear_constraint(expr >= c.rhs, name=c.name)
            else:
                model.add_linear_constraint(expr == c.rhs, name=c.name)
        obj = ip.objectives[0]
        expr = mathopt.LinearSum(a * xs[i] for i, a in zip(obj.var_indices, obj.coefs, strict=True))
        model.maximize(expr)
        remaining = max(0.1, limit_s - (time.monotonic() - t0))
        params = mathopt.SolveParameters(time_limit=datetime.timedelta(seconds=remaining), random_seed=seed)
        res = mathopt.solve(model, solver_type, params=params)
        wall_s = time.monotonic() - t0
        reason = res.termination.reason
        has_solution = res.has_primal_feasible_solution()
        bound = res.termination.objective_bounds.dual_bound
        return Outcome(
            objective=res.objective_value() if has_solution else None,
            bound=bound if abs(bound) < 1e30 else None,
            optimal=reason == mathopt.TerminationReason.OPTIMAL,
            wall_s=wall_s,
        )

    try:  # is the solver in this ortools wheel?
        run(build(4, 2, 0), 2.0, 0)
    except Exception as exc:  # any failure means "not available here"
        print(f"# {solver_name}: not available ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return run


def median(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return statistics.median(vals) if len(vals) == len(xs) and vals else None


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


RUNNERS: dict[str, Callable[[], Callable[[IntegerProgram, float, int], Outcome] | None]] = {
    "cpsat": lambda: run_backend(Backend.ORTOOLS, workers=2),
    "cbc": lambda: run_backend(Backend.PULP, workers=2),
    "highs": lambda: run_mathopt("highs"),
    "scip": lambda: run_mathopt("scip"),
}


def measure(solver: str, jobs: int, agents: int, seed: int, limit_s: float) -> Outcome | None:
    """One run, in its own process (see main)."""
    run = RUNNERS[solver]()
    return None if run is None else run(build(jobs, agents, seed), limit_s, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    # Every run gets a fresh process: native thread pools left behind by one solver (seen with
    # HiGHS) otherwise slow the next one down on a small machine.
    ctx = multiprocessing.get_context("spawn")
    header = f"{'jobs x agents':>14} {'vars':>6} {'solver':>6} {'objective':>12} {'bound':>12} {'gap %':>7}"
    print(header + f" {'wall s':>7} {'opt':>4}", flush=True)
    for jobs, agents in SIZES:
        num_vars = build(jobs, agents, 0).num_vars
        for name in RUNNERS:
            outs: list[Outcome] = []
            for seed in range(args.seeds):
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                    out = pool.submit(measure, name, jobs, agents, seed, args.time_limit).result()
                if out is None:
                    break
                outs.append(out)
            if not outs:
                continue
            gap = median([o.gap for o in outs])
            print(
                f"{f'{jobs} x {agents}':>14} {num_vars:>6} {name:>6}"
                f" {fmt(median([o.objective for o in outs]), '12.0f')}"
                f" {fmt(median([o.bound for o in outs]), '12.0f')}"
                f" {fmt(None if gap is None else 100 * gap, '7.3f')}"
                f" {fmt(median([o.wall_s for o in outs]), '7.2f')}"
                f" {sum(o.optimal for o in outs):>2}/{len(outs)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
