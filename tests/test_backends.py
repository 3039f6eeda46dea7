"""Both solver backends (CP-SAT, CBC via PuLP) on small programs with hand-computed optima.

Every test runs once per backend, so both must reach the same optimum.

Knapsack (max): values 10, 13, 7, 8; weights 5, 6, 3, 4; capacity 10.
    Feasible pairs: {0,2} 17 (w 8), {0,3} 18 (w 9), {1,2} 20 (w 9), {1,3} 21 (w 10), {2,3} 15;
    every triple weighs more than 10. Optimum 21 = items 1 and 3, exactly at the capacity.

Assignment (min), cost[worker][task] = [[4, 1, 3], [2, 0, 5], [3, 2, 2]], objective constant 100.
    The six permutations cost 6, 11, 5, 9, 7, 6; the optimum 5 is unique:
    0->1 (1), 1->0 (2), 2->2 (2). Reported with the constant: 105.

Two tiers: integers 0 <= x, y <= 5, x + y <= 6, 2x + y <= 9.
    Tier 1, max x + y: 6 (x in 1..3 keeps 2x + y <= 9).
    Tier 2, max x, with tier 1 held at 6: x = 3, y = 3 (2*3 + 3 = 9, exactly at the limit).
    Without the hold, max x is 4 (x = 4 forces y <= 1).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable

import pytest

from placement.core.domain import Backend, SolveStatus, StopReason
from placement.exact.backends import get_backend
from placement.exact.backends.base import Progress, ProgressCallback, SolverBackend, TierResult
from placement.exact.backends.cpsat import ModelInvalidError
from placement.exact.backends.pulp_cbc import integral_bound, parse_bound
from placement.exact.model.ir import Direction, IntegerProgram, Objective, Sense

BACKENDS = [pytest.param(Backend.ORTOOLS, id="cpsat"), pytest.param(Backend.PULP, id="cbc")]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> SolverBackend:
    return get_backend(request.param)


# ---------------------------------------------------------------------- programs


def knapsack() -> tuple[IntegerProgram, Objective]:
    ip = IntegerProgram()
    xs = [ip.new_bool(f"take[{i}]") for i in range(4)]
    ip.add("capacity", {x: w for x, w in zip(xs, [5, 6, 3, 4], strict=True)}, Sense.LE, 10)
    obj = ip.add_objective(
        "value", Direction.MAXIMIZE, {x: v for x, v in zip(xs, [10, 13, 7, 8], strict=True)}
    )
    return ip, obj


COST = [[4, 1, 3], [2, 0, 5], [3, 2, 2]]


def assignment() -> tuple[IntegerProgram, Objective, list[list[int]]]:
    ip = IntegerProgram()
    x = [[ip.new_bool(f"x[{w},{t}]") for t in range(3)] for w in range(3)]
    for w in range(3):
        ip.add(f"worker[{w}]", {x[w][t]: 1 for t in range(3)}, Sense.EQ, 1)
    for t in range(3):
        ip.add(f"task[{t}]", {x[w][t]: 1 for w in range(3)}, Sense.EQ, 1)
    cost = {x[w][t]: COST[w][t] for w in range(3) for t in range(3)}
    obj = ip.add_objective("cost", Direction.MINIMIZE, cost, constant=100)
    return ip, obj, x


def two_tier() -> tuple[IntegerProgram, Objective, Objective]:
    ip = IntegerProgram()
    x = ip.new_var("x", 0, 5)
    y = ip.new_var("y", 0, 5)
    ip.add("sum", {x: 1, y: 1}, Sense.LE, 6)
    ip.add("weighted", {x: 2, y: 1}, Sense.LE, 9)
    total = ip.add_objective("total", Direction.MAXIMIZE, {x: 1, y: 1})
    only_x = ip.add_objective("x", Direction.MAXIMIZE, {x: 1})
    return ip, total, only_x


def hard_knapsack(direction: Direction) -> tuple[IntegerProgram, Objective]:
    """A seeded 300-item, 20-dimension 0/1 knapsack; neither solver closes it in seconds.

    MINIMIZE uses the negated values, so the bound must lie below the objective.
    """
    rng = random.Random(1)
    n, m = 300, 20
    ip = IntegerProgram()
    xs = [ip.new_bool(f"x[{i}]") for i in range(n)]
    for j in range(m):
        w = [rng.randint(10, 100) for _ in range(n)]
        ip.add(f"dim[{j}]", dict(zip(xs, w, strict=True)), Sense.LE, sum(w) // 4)
    sign = 1 if direction is Direction.MAXIMIZE else -1
    values = [sign * rng.randint(10, 100) for _ in range(n)]
    obj = ip.add_objective("value", direction, dict(zip(xs, values, strict=True)))
    return ip, obj


def solve(
    backend: SolverBackend,
    ip: IntegerProgram,
    obj: Objective,
    *,
    seed: int = 0,
    workers: int = 2,
    time_limit_s: float = 10.0,
    hint: list[int] | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> TierResult:
    """Loads ``ip`` into a fresh session and solves ``obj``."""
    return backend.load(ip, seed=seed, workers=workers).solve(obj, time_limit_s, hint, progress, stop)


# --------------------------------------------------------------------- optima


def test_knapsack_optimum(backend: SolverBackend) -> None:
    ip, obj = knapsack()
    res = solve(backend, ip, obj)
    assert res.status is SolveStatus.OPTIMAL
    assert res.stop_reason is StopReason.NONE
    assert res.objective == 21
    assert res.values == [0, 1, 0, 1]
    assert res.bound == 21


def test_assignment_optimum_with_constant(backend: SolverBackend) -> None:
    ip, obj, _ = assignment()
    res = solve(backend, ip, obj)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == 105
    assert res.bound == 105
    assert res.values is not None
    chosen = {(w, t) for w in range(3) for t in range(3) if res.values[w * 3 + t] == 1}
    assert chosen == {(0, 1), (1, 0), (2, 2)}


def test_two_tiers_lexicographic(backend: SolverBackend) -> None:
    ip, total, only_x = two_tier()
    session = backend.load(ip, seed=0, workers=2)
    first = session.solve(total, 10.0, None, None, None)
    assert (first.status, first.objective) == (SolveStatus.OPTIMAL, 6)
    session.hold(total, 6)
    second = session.solve(only_x, 10.0, first.values, None, None)
    assert (second.status, second.objective, second.values) == (SolveStatus.OPTIMAL, 3, [3, 3])


@pytest.mark.parametrize("seed", range(4))
def test_random_small_knapsacks_match_brute_force(backend: SolverBackend, seed: int) -> None:
    rng = random.Random(seed)
    n = 8
    w = [rng.randint(1, 9) for _ in range(n)]
    v = [rng.randint(1, 9) for _ in range(n)]
    cap = sum(w) // 2
    ip = IntegerProgram()
    xs = [ip.new_bool(f"x[{i}]") for i in range(n)]
    ip.add("cap", dict(zip(xs, w, strict=True)), Sense.LE, cap)
    obj = ip.add_objective("v", Direction.MAXIMIZE, dict(zip(xs, v, strict=True)))
    best = max(
        sum(vi for vi, b in zip(v, bits, strict=True) if b)
        for bits in itertools.product((0, 1), repeat=n)
        if sum(wi for wi, b in zip(w, bits, strict=True) if b) <= cap
    )
    res = solve(backend, ip, obj)
    assert (res.status, res.objective) == (SolveStatus.OPTIMAL, best)


def test_objective_without_terms_is_its_constant(backend: SolverBackend) -> None:
    ip, _ = knapsack()
    empty = ip.add_objective("nothing", Direction.MINIMIZE, {}, constant=7)
    res = solve(backend, ip, empty)
    assert (res.status, res.objective) == (SolveStatus.OPTIMAL, 7)
    assert res.values is not None and not ip.is_feasible(res.values)


# ---------------------------------------------------------------- infeasible


def _lp_infeasible(ip: IntegerProgram, x: int, y: int) -> None:
    ip.add("at least 4", {x: 1, y: 1}, Sense.GE, 4)
    ip.add("at most 3", {x: 1, y: 1}, Sense.LE, 3)


def _integer_infeasible(ip: IntegerProgram, x: int, y: int) -> None:
    ip.add("odd", {x: 2, y: 2}, Sense.EQ, 3)  # the LP relaxation is feasible


def _constant_broken(ip: IntegerProgram, x: int, y: int) -> None:
    ip.add("0 >= 1", {}, Sense.GE, 1)


def _one_over_bound(ip: IntegerProgram, x: int, y: int) -> None:
    ip.add("x + y >= 21", {x: 1, y: 1}, Sense.GE, 21)  # both at their upper bound make 20


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(_lp_infeasible, id="lp-infeasible"),
        pytest.param(_integer_infeasible, id="integer-infeasible"),
        pytest.param(_constant_broken, id="constant-constraint-broken"),
        pytest.param(_one_over_bound, id="one-over-the-bounds"),
    ],
)
def test_infeasible(backend: SolverBackend, build: Callable[[IntegerProgram, int, int], None]) -> None:
    ip = IntegerProgram()
    x, y = ip.new_var("x", 0, 10), ip.new_var("y", 0, 10)
    build(ip, x, y)
    obj = ip.add_objective("x", Direction.MINIMIZE, {x: 3, y: 2})
    res = solve(backend, ip, obj)
    assert res.status is SolveStatus.INFEASIBLE
    assert res.values is None and res.objective is None and res.bound is None


def test_exactly_at_the_bounds_is_feasible(backend: SolverBackend) -> None:
    ip = IntegerProgram()
    x, y = ip.new_var("x", 0, 10), ip.new_var("y", 0, 10)
    ip.add("x + y >= 20", {x: 1, y: 1}, Sense.GE, 20)
    obj = ip.add_objective("x", Direction.MINIMIZE, {x: 1})
    res = solve(backend, ip, obj)
    assert (res.status, res.values) == (SolveStatus.OPTIMAL, [10, 10])


# ------------------------------------------------------------ hints and hold


@pytest.mark.parametrize(
    "hint",
    [
        pytest.param([0, 1, 0, 1], id="optimal-hint"),
        pytest.param([1, 0, 1, 0], id="feasible-hint"),
        pytest.param([1, 1, 1, 1], id="infeasible-hint"),
    ],
)
def test_hint_accepted(backend: SolverBackend, hint: list[int]) -> None:
    ip, obj = knapsack()
    res = solve(backend, ip, obj, hint=hint)
    assert (res.status, res.objective) == (SolveStatus.OPTIMAL, 21)


def test_hint_of_wrong_length_is_refused(backend: SolverBackend) -> None:
    ip, obj = knapsack()
    with pytest.raises(ValueError, match="hint"):
        solve(backend, ip, obj, hint=[0, 1])


def test_program_hint_used_when_stopped_before_start(backend: SolverBackend) -> None:
    ip, obj = knapsack()
    ip.hint = {0: 1, 1: 0, 2: 1, 3: 0}  # value 17
    stop = threading.Event()
    stop.set()
    res = solve(backend, ip, obj, stop=stop)
    assert (res.status, res.stop_reason) == (SolveStatus.FEASIBLE, StopReason.INTERRUPTED)
    assert (res.values, res.objective, res.bound) == ([1, 0, 1, 0], 17, None)


def test_infeasible_hint_is_not_returned_when_stopped(backend: SolverBackend) -> None:
    ip, obj = knapsack()
    stop = threading.Event()
    stop.set()
    res = solve(backend, ip, obj, stop=stop, hint=[1, 1, 1, 1])
    assert (res.status, res.stop_reason, res.values) == (
        SolveStatus.NO_SOLUTION,
        StopReason.INTERRUPTED,
        None,
    )


def test_hold_restricts_the_next_tier_max(backend: SolverBackend) -> None:
    ip, total, only_x = two_tier()
    free = backend.load(ip, seed=0, workers=2).solve(only_x, 10.0, None, None, None)
    assert free.objective == 4
    held = backend.load(ip, seed=0, workers=2)
    held.hold(total, 6)
    assert held.solve(only_x, 10.0, None, None, None).objective == 3


def test_hold_restricts_the_next_tier_min_with_constant(backend: SolverBackend) -> None:
    """Holding cost <= 105 (5 plus the constant 100) leaves only 0->1, so x[0,0] cannot be 1."""
    ip, cost, x = assignment()
    x00 = ip.add_objective("x00", Direction.MAXIMIZE, {x[0][0]: 1})
    free = backend.load(ip, seed=0, workers=2).solve(x00, 10.0, None, None, None)
    assert free.objective == 1
    held = backend.load(ip, seed=0, workers=2)
    held.hold(cost, 105)
    res = held.solve(x00, 10.0, None, None, None)
    assert (res.status, res.objective) == (SolveStatus.OPTIMAL, 0)
    held.hold(cost, 104)  # one below the optimum
    assert held.solve(x00, 10.0, None, None, None).status is SolveStatus.INFEASIBLE


def test_progress_reports_the_final_objective(backend: SolverBackend) -> None:
    ip, obj = knapsack()
    seen: list[Progress] = []
    res = solve(backend, ip, obj, progress=seen.append)
    assert seen, "no progress reported"
    assert all(p.tier == "value" for p in seen)
    assert [p.objective for p in seen] == sorted(p.objective for p in seen)  # improving (max)
    assert seen[-1].objective == res.objective == 21


# ----------------------------------------------------- time limit and cancel


@pytest.mark.parametrize("direction", [Direction.MAXIMIZE, Direction.MINIMIZE], ids=["max", "min"])
def test_time_limit_gives_feasible_with_bound(backend: SolverBackend, direction: Direction) -> None:
    """For CBC this is the regression test for PuLP calling a time-limited stop "Optimal"."""
    ip, obj = hard_knapsack(direction)
    res = solve(backend, ip, obj, time_limit_s=1.0, workers=2)
    assert (res.status, res.stop_reason) == (SolveStatus.FEASIBLE, StopReason.TIME_LIMIT)
    assert res.values is not None and not ip.is_feasible(res.values)
    assert res.objective == obj.value(res.values)
    assert res.bound is not None
    if direction is Direction.MAXIMIZE:
        assert res.bound >= res.objective
    else:
        assert res.bound <= res.objective


def test_cpsat_single_worker_reports_no_bound_unless_optimal() -> None:
    ip, obj = hard_knapsack(Direction.MAXIMIZE)
    res = solve(get_backend(Backend.ORTOOLS), ip, obj, time_limit_s=1.0, workers=1)
    assert (res.status, res.stop_reason, res.bound) == (SolveStatus.FEASIBLE, StopReason.TIME_LIMIT, None)
    ip, obj = knapsack()
    res = solve(get_backend(Backend.ORTOOLS), ip, obj, workers=1)
    assert (res.status, res.bound) == (SolveStatus.OPTIMAL, 21)


def test_stop_from_another_thread_interrupts(backend: SolverBackend) -> None:
    ip, obj = hard_knapsack(Direction.MAXIMIZE)
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        res = solve(backend, ip, obj, time_limit_s=60.0, stop=stop)
    finally:
        timer.cancel()
    assert res.stop_reason is StopReason.INTERRUPTED
    assert res.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION)
    if res.values is not None:
        assert not ip.is_feasible(res.values)


# ------------------------------------------------------------------- details


def test_cpsat_invalid_model_raises() -> None:
    ip = IntegerProgram()
    x = ip.new_var("x", 0, 2**40)
    ip.add("overflow", {x: 2**40}, Sense.LE, 1)  # coefficient times bound overflows int64
    obj = ip.add_objective("x", Direction.MAXIMIZE, {x: 1})
    with pytest.raises(ModelInvalidError):
        solve(get_backend(Backend.ORTOOLS), ip, obj)


@pytest.mark.parametrize(
    ("direction", "printed", "expected"),
    [
        pytest.param(Direction.MAXIMIZE, 6463.287, 6463.0, id="max-fraction-floors"),
        pytest.param(Direction.MAXIMIZE, 6463.9996, 6464.0, id="max-printed-just-below-an-integer"),
        pytest.param(Direction.MINIMIZE, 12.001, 12.0, id="min-print-precision-allowed"),
        pytest.param(Direction.MINIMIZE, 12.01, 13.0, id="min-fraction-ceils"),
    ],
)
def test_cbc_integral_bound(direction: Direction, printed: float, expected: float) -> None:
    assert integral_bound(direction, printed) == expected


def test_cbc_bound_parsed_from_summary_or_search_line() -> None:
    summary = "Result - Stopped on time limit\n\nObjective value:  6425.0\nUpper bound:   6463.287\n"
    assert parse_bound(summary, Direction.MAXIMIZE) == 6463.0
    search = "Cbc0005I Partial search - best objective -6425 (best possible -6463.2865), took"
    assert parse_bound(search, Direction.MAXIMIZE) == 6463.0
    assert parse_bound("Result - Stopped on time limit\n", Direction.MINIMIZE) is None


def test_versions_name_the_solver() -> None:
    assert "ortools" in get_backend(Backend.ORTOOLS).version()
    pulp_version = get_backend(Backend.PULP).version()
    assert "pulp" in pulp_version and "CBC 2." in pulp_version
