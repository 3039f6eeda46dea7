"""The seam for every linear and mixed-integer program other than the per-node model.

The per-node model goes through ``SolverBackend`` and its ``Session`` (``base.py``): tiers
held one after the other, warm starts, progress, a stop. Every other LP or MIP is written
as a ``LinearProgram`` and solved by ``solve``, which answers in our own terms
(``LinearResult``: ``SolveStatus``, ``StopReason``, objective, bound, values, duals), never
with a solver's status code:

* ``placement.bounds.bound``: the (site, GPU type) relaxation and the node-group LP (GLOP), and
  the integer bound's program per power domain (HiGHS);
* ``placement.improve.polish``: the program that repacks one power domain (CP-SAT).

(``benchmarks.pairmip``'s textbook model is an ``IntegerProgram`` like the per-node model's,
and goes through the ``Session``.)

Notations: columns ``x_j`` with ``lb_j <= x_j <= col_ub[j]`` (``lb_j`` is 0 unless
``col_lb`` says otherwise; integer where ``j in integer``), objective ``sum_j obj[j] x_j``
(maximised when ``maximize``), rows ``lb[r] <= sum_j a_rj x_j <= ub[r]``, stored by row
(``cols[r]``, ``coefs[r]``), terms in the order added (callers add them in column order),
never a zero coefficient.

One path for every solver: the program is written as an ``MPModelProto`` and solved by
``pywraplp.Solver.SolveWithProto``, which is what ``pywraplp``'s own ``Solve`` does for
CP-SAT and HiGHS (it exports the same proto and hands it to the same proto solver), so a
program reaches the solver as the object API wrote it. A row without coefficients is
written as it is for the MIP solvers (outside its bounds it makes the program infeasible);
for an LP it is left out where it holds at 0 (it constrains nothing, its dual is 0).
"""

from __future__ import annotations

import enum
import logging
import math
import time
from array import array
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Any

from placement.core.domain import SolveStatus, StopReason

log = logging.getLogger(__name__)


class LinearSolver(enum.Enum):
    """The solvers behind ``solve``, by the names ``SolveInfo.solvers`` reports."""

    GLOP = "glop"  # LP (OR-Tools)
    HIGHS = "highs"  # MIP (HiGHS, bundled with OR-Tools)
    CP_SAT = "cp-sat"  # integer programs (OR-Tools)


class LinearProgram:
    """A sparse linear or mixed-integer program (module docstring), built column by column."""

    def __init__(self, maximize: bool = True) -> None:
        self.maximize = maximize
        self.obj = array("d")
        self.col_ub = array("d")
        self.col_lb: dict[int, float] = {}  # where not 0 (most columns start at 0)
        self.integer: set[int] = set()
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.cols: list[array[int]] = []  # typed arrays: a fifth of a list's memory
        self.coefs: list[array[float]] = []

    @property
    def num_cols(self) -> int:
        return len(self.obj)

    def col(self, obj: float = 0.0, ub: float = math.inf, lb: float = 0.0, integer: bool = False) -> int:
        """A new column; the hot loop of a large LP may append to ``obj`` and ``col_ub`` itself."""
        j = len(self.obj)
        self.obj.append(obj)
        self.col_ub.append(ub)
        if lb:
            self.col_lb[j] = lb
        if integer:
            self.integer.add(j)
        return j

    def int_col(self, ub: float, obj: float = 0.0) -> int:
        return self.col(obj, ub, 0.0, True)

    def row(self, lb: float = -math.inf, ub: float = math.inf) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.cols.append(array("i"))
        self.coefs.append(array("d"))
        return len(self.lb) - 1

    def add(self, row: int, col: int, coef: float) -> None:
        if coef:
            self.cols[row].append(col)
            self.coefs[row].append(coef)

    def set_obj(self, col: int, coef: float) -> None:
        self.obj[col] = coef

    def set_bounds(self, row: int, lb: float | None = None, ub: float | None = None) -> None:
        if lb is not None:
            self.lb[row] = lb
        if ub is not None:
            self.ub[row] = ub


@dataclass(frozen=True)
class LinearResult:
    """What ``solve`` found. ``bound``: a proven bound on the objective (the optimum of an LP
    solved to optimality); ``duals``: per row, for an LP solved to optimality, 0 for a row left
    out; ``values``: per column, when there is a solution."""

    status: SolveStatus  # OPTIMAL, FEASIBLE, INFEASIBLE or NO_SOLUTION
    stop_reason: StopReason
    objective: float | None
    bound: float | None
    values: list[float] | None
    duals: list[float] | None
    solver: LinearSolver
    wall_s: float

    @property
    def has_solution(self) -> bool:
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def _cp_sat_parameters(workers: int, presolve: bool, work_s: float | None) -> str:
    parts = [f"num_workers:{workers}"]
    if not presolve:
        parts.append("cp_model_presolve:false")
    # CP-SAT's own SIGINT handler outlives the solve and aborts the process on the next Ctrl-C
    parts.append("catch_sigint_signal:false")
    if work_s is not None:
        parts.append(f"max_deterministic_time:{work_s}")
    return " ".join(parts)


def to_proto(program: LinearProgram, mip: bool) -> tuple[Any, list[int]]:
    """``program`` as an ``MPModelProto``, with the indices of the rows written (module docstring)."""
    from ortools.linear_solver import linear_solver_pb2 as pb

    model = pb.MPModelProto(maximize=program.maximize)
    add_var = model.variable.add
    lower, integer = program.col_lb, program.integer
    if not lower and not integer:  # an LP over columns >= 0 (a million columns at L): the short loop
        for c, ub in zip(program.obj, program.col_ub, strict=True):
            add_var(lower_bound=0.0, upper_bound=ub, objective_coefficient=c)
    else:
        for j, (c, ub) in enumerate(zip(program.obj, program.col_ub, strict=True)):
            lb = lower.get(j, 0.0)
            if j in integer:
                add_var(lower_bound=lb, upper_bound=ub, objective_coefficient=c, is_integer=True)
            else:
                add_var(lower_bound=lb, upper_bound=ub, objective_coefficient=c)
    written: list[int] = []
    for i, (lb, ub, cols, coefs) in enumerate(
        zip(program.lb, program.ub, program.cols, program.coefs, strict=True)
    ):
        if cols or mip or not lb <= 0.0 <= ub:
            written.append(i)
            ct = model.constraint.add(lower_bound=lb, upper_bound=ub)
            ct.var_index.extend(cols)
            ct.coefficient.extend(coefs)
    return model, written


def solve(
    program: LinearProgram,
    solver: LinearSolver,
    *,
    time_limit_s: float | None = None,
    work_s: float | None = None,
    workers: int = 1,
    presolve: bool = True,
) -> LinearResult:
    """Solve ``program`` with ``solver`` within ``time_limit_s`` (wall seconds); ``work_s``:
    CP-SAT's deterministic time, which then ends the search (``StopReason.WORK_LIMIT``) and
    the wall limit is the safety net. ``workers`` and ``presolve`` are CP-SAT's; HiGHS runs
    quietly with its defaults, GLOP with its own."""
    from ortools.linear_solver import linear_solver_pb2 as pb
    from ortools.linear_solver import pywraplp

    if time_limit_s is not None and time_limit_s <= 0:
        return LinearResult(
            SolveStatus.NO_SOLUTION, StopReason.TIME_LIMIT, None, None, None, None, solver, 0.0
        )
    t0 = time.monotonic()
    mip = solver is not LinearSolver.GLOP
    model, written = to_proto(program, mip)
    kind = {
        LinearSolver.GLOP: pb.MPModelRequest.GLOP_LINEAR_PROGRAMMING,
        LinearSolver.HIGHS: pb.MPModelRequest.HIGHS_MIXED_INTEGER_PROGRAMMING,
        LinearSolver.CP_SAT: pb.MPModelRequest.SAT_INTEGER_PROGRAMMING,
    }[solver]
    request = pb.MPModelRequest(model=model, solver_type=kind)
    if time_limit_s is not None:
        request.solver_time_limit_seconds = time_limit_s
    if solver is LinearSolver.CP_SAT:
        request.solver_specific_parameters = _cp_sat_parameters(workers, presolve, work_s)
    elif solver is LinearSolver.HIGHS:
        request.solver_specific_parameters = "output_flag=false"  # else a banner on stdout each solve
    response = pb.MPSolutionResponse()
    pywraplp.Solver.SolveWithProto(request, response)
    wall_s = time.monotonic() - t0

    code = response.status
    if code == pb.MPSOLVER_OPTIMAL:
        status, stop = SolveStatus.OPTIMAL, StopReason.NONE
    elif code == pb.MPSOLVER_INFEASIBLE:
        status, stop = SolveStatus.INFEASIBLE, StopReason.NONE
    else:
        status = SolveStatus.FEASIBLE if code == pb.MPSOLVER_FEASIBLE else SolveStatus.NO_SOLUTION
        stop = StopReason.NONE
        if work_s is not None and (time_limit_s is None or wall_s < time_limit_s):
            stop = StopReason.WORK_LIMIT
        elif time_limit_s is not None:
            stop = StopReason.TIME_LIMIT
        stopped = code in (
            pb.MPSOLVER_FEASIBLE,
            pb.MPSOLVER_NOT_SOLVED,
            pb.MPSOLVER_CANCELLED_BY_USER,
            pb.MPSOLVER_UNKNOWN_STATUS,  # HiGHS at its time limit, however good its incumbent
        )
        if not (stopped and stop is not StopReason.NONE):  # not a limit: the solver failed
            log.warning(
                "%s: %s %s",
                solver.value,
                pb.MPSolverResponseStatus.Name(code),
                response.status_str[:200],
            )
    if status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return LinearResult(status, stop, None, None, None, None, solver, wall_s)
    objective = response.objective_value
    bound: float | None = None
    if not mip:
        bound = objective if status is SolveStatus.OPTIMAL else None
    elif math.isfinite(response.best_objective_bound):
        bound = response.best_objective_bound
    duals: list[float] | None = None
    if not mip and status is SolveStatus.OPTIMAL:
        duals = [0.0] * len(program.lb)
        for i, d in zip(written, response.dual_value, strict=False):
            duals[i] = d
    return LinearResult(status, stop, objective, bound, list(response.variable_value), duals, solver, wall_s)


def versions(solvers: tuple[str, ...] | list[str]) -> str:
    """The libraries behind ``solvers`` (names as ``SolveInfo.solvers`` has them), with versions."""
    out: list[str] = []
    for name in solvers:
        if name in ("glop", "highs", "cp-sat"):
            text = f"ortools {_version('ortools')}"
        elif name == "cbc":
            from placement.exact.backends.pulp_cbc import cbc_version

            text = f"pulp {_version('pulp')}, CBC {cbc_version()}"
        else:
            continue
        if text not in out:
            out.append(text)
    return "; ".join(out)


def _version(dist: str) -> str:
    try:
        return _dist_version(dist)
    except PackageNotFoundError:
        return "unknown"
