"""The LP/MIP seam (``placement.exact.backends.linear``) on small programs with hand-computed optima.

LP: max 3x + 2y, x + y <= 4 (r0), x + 3y <= 9 (r1), 0 <= x <= 3. At x = 3 (its bound) y = 1
    fills r0: 11. r0 binds with dual 2 (one more unit of r0 buys one more y); r1 is slack
    (3 + 3 = 6 < 9), dual 0.
Knapsack (max): values 10, 13, 7, 8; weights 5, 6, 3, 4; capacity 10. Optimum 21 = items 1
    and 3, exactly at the capacity (every triple weighs more than 10).
"""

from __future__ import annotations

import math
import random

import pytest

from placement.core.domain import SolveStatus, StopReason
from placement.exact.backends.linear import LinearProgram, LinearSolver, solve, to_proto, versions

MIP_SOLVERS = [LinearSolver.HIGHS, LinearSolver.CP_SAT]


def small_lp() -> LinearProgram:
    lp = LinearProgram(maximize=True)
    x = lp.col(obj=3.0, ub=3.0)
    y = lp.col(obj=2.0)
    r0 = lp.row(-math.inf, 4.0)
    lp.add(r0, x, 1.0)
    lp.add(r0, y, 1.0)
    r1 = lp.row(-math.inf, 9.0)
    lp.add(r1, x, 1.0)
    lp.add(r1, y, 3.0)
    lp.row(-math.inf, 5.0)  # no coefficients: constrains nothing
    return lp


def knapsack(capacity: float = 10.0) -> LinearProgram:
    mip = LinearProgram(maximize=True)
    xs = [mip.int_col(1, obj=v) for v in (10.0, 13.0, 7.0, 8.0)]
    cap = mip.row(-math.inf, capacity)
    for x, w in zip(xs, (5.0, 6.0, 3.0, 4.0), strict=True):
        mip.add(cap, x, w)
    return mip


def test_an_lp_reports_its_optimum_values_and_duals() -> None:
    got = solve(small_lp(), LinearSolver.GLOP)
    assert (got.status, got.stop_reason, got.solver) == (
        SolveStatus.OPTIMAL,
        StopReason.NONE,
        LinearSolver.GLOP,
    )
    assert got.objective == pytest.approx(11.0)
    assert got.bound == got.objective  # an LP solved to optimality bounds itself
    assert got.values == pytest.approx([3.0, 1.0])
    assert got.duals == pytest.approx([2.0, 0.0, 0.0])  # the empty row was left out: dual 0


@pytest.mark.parametrize("solver", MIP_SOLVERS, ids=lambda s: s.value)
@pytest.mark.parametrize(
    ("case", "capacity", "optimum", "taken"),
    [
        ("exactly at the capacity", 10.0, 21.0, [0, 1, 0, 1]),
        ("one short: 1 and 2", 9.0, 20.0, [0, 1, 1, 0]),
        ("nothing fits", 2.0, 0.0, [0, 0, 0, 0]),
    ],
)
def test_a_knapsack_reaches_its_optimum_in_both_mip_solvers(
    solver: LinearSolver, case: str, capacity: float, optimum: float, taken: list[int]
) -> None:
    got = solve(knapsack(capacity), solver, time_limit_s=30)
    assert got.status is SolveStatus.OPTIMAL, case
    assert got.stop_reason is StopReason.NONE, case
    assert got.objective == pytest.approx(optimum), case
    assert got.bound == pytest.approx(optimum), case
    assert got.values is not None and [round(v) for v in got.values] == taken, case


@pytest.mark.parametrize("solver", [LinearSolver.GLOP, *MIP_SOLVERS], ids=lambda s: s.value)
@pytest.mark.parametrize(
    ("case", "lb", "ub", "status"),
    [
        ("empty row holding at 0", 0.0, 0.0, SolveStatus.OPTIMAL),
        ("empty row that 0 breaks", 1.0, 2.0, SolveStatus.INFEASIBLE),
    ],
)
def test_an_empty_row_is_kept_where_it_decides_feasibility(
    solver: LinearSolver, case: str, lb: float, ub: float, status: SolveStatus
) -> None:
    prog = knapsack() if solver is not LinearSolver.GLOP else small_lp()
    prog.row(lb, ub)
    got = solve(prog, solver, time_limit_s=30)
    assert got.status is status, case
    assert (got.values is None) is (status is SolveStatus.INFEASIBLE), case


@pytest.mark.parametrize("solver", MIP_SOLVERS, ids=lambda s: s.value)
def test_an_infeasible_program_says_so(solver: LinearSolver) -> None:
    mip = LinearProgram()
    x = mip.int_col(1, obj=1.0)
    r = mip.row(2.0, math.inf)  # x >= 2 with x <= 1
    mip.add(r, x, 1.0)
    got = solve(mip, solver, time_limit_s=30)
    assert (got.status, got.stop_reason, got.values, got.bound) == (
        SolveStatus.INFEASIBLE,
        StopReason.NONE,
        None,
        None,
    )


def test_no_time_left_is_no_solution_at_the_time_limit() -> None:
    got = solve(knapsack(), LinearSolver.CP_SAT, time_limit_s=0.0)
    assert (got.status, got.stop_reason) == (SolveStatus.NO_SOLUTION, StopReason.TIME_LIMIT)


def _hard_knapsack(n: int = 400) -> LinearProgram:
    rng = random.Random(3)
    mip = LinearProgram()
    cap = mip.row(-math.inf, float(n * 25))
    for _ in range(n):
        w = rng.randint(10, 90)
        x = mip.int_col(1, obj=float(w + rng.randint(-5, 5)))
        mip.add(cap, x, float(w))
    return mip


def test_cp_sat_ended_by_its_deterministic_work_reports_the_work_limit() -> None:
    got = solve(_hard_knapsack(), LinearSolver.CP_SAT, time_limit_s=60, work_s=1e-4, presolve=False)
    assert got.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION)
    assert got.stop_reason is StopReason.WORK_LIMIT


def test_a_zero_coefficient_is_never_written() -> None:
    lp = LinearProgram()
    x = lp.col(obj=1.0)
    r = lp.row(-math.inf, 1.0)
    lp.add(r, x, 0.0)
    assert list(lp.cols[r]) == [] and list(lp.coefs[r]) == []


def test_the_proto_is_the_one_pywraplp_exports_for_the_same_program() -> None:
    """Why the seam changed no result: ``pywraplp``'s ``Solve`` exports its model to this proto
    and hands it to the same proto solver; a random program written both ways gives the same
    variables (bounds, objective, integrality) and rows (bounds, terms in column order)."""
    from ortools.linear_solver import linear_solver_pb2 as pb
    from ortools.linear_solver import pywraplp

    rng = random.Random(7)
    solver = pywraplp.Solver.CreateSolver("CP_SAT")
    inf = solver.infinity()
    prog = LinearProgram(maximize=True)
    objects = []
    for j in range(30):
        integer = j % 3 != 0
        ub = float(rng.randint(1, 9)) if integer else inf
        objects.append(solver.IntVar(0, ub, "") if integer else solver.NumVar(0, ub, ""))
        prog.col(ub=ub, integer=integer)
    objective = solver.Objective()
    objective.SetMaximization()
    for j in rng.sample(range(30), 12):
        c = float(rng.randint(1, 50))
        objective.SetCoefficient(objects[j], c)
        prog.set_obj(j, c)
    for _ in range(20):
        lb = -inf if rng.random() < 0.5 else float(rng.randint(0, 3))
        ub = inf if lb != -inf and rng.random() < 0.5 else float(rng.randint(3, 40))
        ct = solver.Constraint(lb, ub)
        r = prog.row(lb, ub)
        for j in sorted(rng.sample(range(30), rng.randint(0, 6))):
            a = float(rng.choice([-3, -1, 0, 1, 2, 5]))
            ct.SetCoefficient(objects[j], a)
            prog.add(r, j, a)
    ref = pb.MPModelProto()
    solver.ExportModelToProto(ref)
    mine, written = to_proto(prog, mip=True)
    assert written == list(range(20))

    def variables(m: pb.MPModelProto) -> list[tuple[float, float, float, bool]]:
        return [(v.lower_bound, v.upper_bound, v.objective_coefficient, v.is_integer) for v in m.variable]

    def rows(m: pb.MPModelProto) -> list[tuple[float, float, list[int], list[float]]]:
        return [(c.lower_bound, c.upper_bound, list(c.var_index), list(c.coefficient)) for c in m.constraint]

    assert mine.maximize == ref.maximize
    assert variables(mine) == variables(ref)
    assert rows(mine) == rows(ref)


def test_versions_name_each_library_once() -> None:
    text = versions(["glop", "cp-sat", "highs", "cbc"])
    assert text.count("ortools") == 1 and "CBC" in text
    assert versions([]) == ""
