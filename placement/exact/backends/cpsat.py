"""CP-SAT backend (OR-Tools): the default.

The ``IntegerProgram`` maps one to one: integer variables with their bounds and
linear constraints with their names. ``load`` builds the ``CpModel`` once; each
``solve`` replaces the objective and the hints, and ``hold`` adds the constraint
that fixes a tier before the next one is optimised.

Objective constants stay outside the solver: CP-SAT optimises the linear part and
this module adds the constant to every value and bound it reports.

Bounds: with a single worker CP-SAT runs no bound-proving subsolver, so its
``best_objective_bound`` is the trivial one; a bound is then reported only when the
tier is proven optimal (the bound is the optimum).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from importlib.metadata import version as _dist_version

from ortools.sat.python import cp_model

from placement.core.domain import Backend, SolveStatus, StopReason
from placement.exact.backends import clamp_bound, fallback_result, full_hint
from placement.exact.backends.base import Progress, ProgressCallback, TierResult
from placement.exact.model.ir import Direction, IntegerProgram, Objective, Sense

log = logging.getLogger(__name__)

_STOP_POLL_S = 0.05


class ModelInvalidError(RuntimeError):
    """CP-SAT rejected the model as invalid: a bug in the formulation or in this backend."""


class _Callback(cp_model.CpSolverSolutionCallback):
    """Reports each improving solution and stops the search when asked to.

    CP-SAT calls it from one of its own threads (never two at once), so ``progress``
    must be safe to call from a thread other than the caller's.
    """

    def __init__(
        self,
        tier: str,
        constant: int,
        report_bound: bool,
        t0: float,
        progress: ProgressCallback | None,
        stop: threading.Event | None,
    ) -> None:
        super().__init__()
        self._tier = tier
        self._constant = constant
        self._report_bound = report_bound
        self._t0 = t0
        self._progress = progress
        self._stop = stop

    def on_solution_callback(self) -> None:
        if self._stop is not None and self._stop.is_set():
            self.stop_search()
        if self._progress is None:
            return
        bound: float | None = None
        if self._report_bound:
            raw = self.best_objective_bound
            bound = raw + self._constant if math.isfinite(raw) else None
        self._progress(
            Progress(
                tier=self._tier,
                objective=float(round(self.objective_value) + self._constant),
                bound=bound,
                elapsed_s=time.monotonic() - self._t0,
            )
        )


class CpSatSession:
    """One loaded program; objectives are solved one at a time."""

    def __init__(self, program: IntegerProgram, seed: int, workers: int) -> None:
        self._program = program
        self._seed = seed
        self._workers = max(1, workers)
        self._model = cp_model.CpModel()
        self._vars = [
            self._model.new_int_var(lb, ub, name)
            for name, lb, ub in zip(program.names, program.lower, program.upper, strict=True)
        ]
        for c in program.constraints:
            expr = self._expr(c.var_indices, c.coefs)
            self._add(expr, c.sense, c.rhs, c.name)
        log.debug(
            "CP-SAT model loaded: %d variables, %d constraints", program.num_vars, len(program.constraints)
        )

    def _expr(self, var_indices: list[int], coefs: list[int]) -> cp_model.LinearExpr:
        return cp_model.LinearExpr.weighted_sum([self._vars[i] for i in var_indices], coefs)

    def _add(self, expr: cp_model.LinearExpr, sense: Sense, rhs: int, name: str) -> None:
        if sense is Sense.LE:
            ct = self._model.add_linear_constraint(expr, -cp_model.INT_MAX, rhs)
        elif sense is Sense.GE:
            ct = self._model.add_linear_constraint(expr, rhs, cp_model.INT_MAX)
        else:
            ct = self._model.add_linear_constraint(expr, rhs, rhs)
        ct.with_name(name)

    def hold(self, objective: Objective, value: int) -> None:
        expr = self._expr(objective.var_indices, objective.coefs)
        sense = Sense.GE if objective.direction is Direction.MAXIMIZE else Sense.LE
        self._add(expr, sense, value - objective.constant, f"hold {objective.name}")

    def solve(
        self,
        objective: Objective,
        time_limit_s: float,
        hint: list[int] | None,
        progress: ProgressCallback | None,
        stop: threading.Event | None,
        work: float | None = None,
    ) -> TierResult:
        t0 = time.monotonic()
        start = full_hint(self._program, hint)
        if stop is not None and stop.is_set():
            return fallback_result(self._program, objective, start, StopReason.INTERRUPTED, 0.0)
        if time_limit_s <= 0:
            return fallback_result(self._program, objective, start, StopReason.TIME_LIMIT, 0.0)

        expr = self._expr(objective.var_indices, objective.coefs)
        if objective.direction is Direction.MAXIMIZE:
            self._model.maximize(expr)
        else:
            self._model.minimize(expr)
        self._model.clear_hints()
        if start is not None:  # written straight into the proto: add_hint is slow on large models
            hint_proto = self._model.proto.solution_hint
            hint_proto.vars.extend(range(len(self._vars)))
            hint_proto.values.extend(int(v) for v in start)

        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit_s
        solver.parameters.random_seed = self._seed
        solver.parameters.num_workers = self._workers
        solver.parameters.log_search_progress = False
        # CP-SAT's own SIGINT handler outlives the solve and aborts the process on the next
        # Ctrl-C (std::bad_function_call); the caller's ``stop`` is how a solve is interrupted
        solver.parameters.catch_sigint_signal = False
        if work is not None:  # deterministic: one worker (two interleaved workers
            # reached less in twice the wall time), bounded by deterministic time
            solver.parameters.max_deterministic_time = work
            solver.parameters.num_workers = 1
        report_bound = solver.parameters.num_workers > 1
        callback = _Callback(objective.name, objective.constant, report_bound, t0, progress, stop)

        done = threading.Event()
        watcher: threading.Thread | None = None
        if stop is not None:
            watcher = threading.Thread(
                target=_watch, args=(solver, stop, done), name="cpsat-stop-watcher", daemon=True
            )
            watcher.start()
        try:
            status = solver.solve(self._model, callback)
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
        wall_s = time.monotonic() - t0
        interrupted = stop is not None and stop.is_set()
        early = StopReason.INTERRUPTED if interrupted else StopReason.TIME_LIMIT
        if not interrupted and work is not None and solver.wall_time < time_limit_s:
            early = StopReason.WORK_LIMIT  # the deterministic budget ended it, not the clock
        log.debug(
            "CP-SAT tier %s: %s in %.2f s (%s)",
            objective.name,
            solver.status_name(status),
            wall_s,
            solver.solution_info(),
        )

        if status == cp_model.MODEL_INVALID:
            raise ModelInvalidError(f"CP-SAT rejected the model: {self._model.validate()}")
        if status == cp_model.INFEASIBLE:
            return TierResult(SolveStatus.INFEASIBLE, StopReason.NONE, None, None, None, wall_s)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            # UNKNOWN: stopped (time or cancel) before a solution was found
            return fallback_result(self._program, objective, start, early, wall_s)

        values = [int(v) for v in solver.response_proto.solution]
        broken = self._program.is_feasible(values)
        if broken:
            raise RuntimeError(f"CP-SAT returned a solution that breaks {broken[:5]}")
        value = objective.value(values)
        if status == cp_model.OPTIMAL:
            return TierResult(SolveStatus.OPTIMAL, StopReason.NONE, values, value, float(value), wall_s)
        bound: float | None = None
        if report_bound and math.isfinite(solver.best_objective_bound):
            bound = clamp_bound(objective, value, solver.best_objective_bound + objective.constant)
        return TierResult(SolveStatus.FEASIBLE, early, values, value, bound, wall_s)


def _watch(solver: cp_model.CpSolver, stop: threading.Event, done: threading.Event) -> None:
    """Stops the search as soon as ``stop`` is set, also between solutions."""
    while not done.wait(_STOP_POLL_S):
        if stop.is_set():
            # repeated until the solve returns: a call that lands before the search starts is not kept
            solver.stop_search()


class CpSatBackend:
    name = Backend.ORTOOLS.value
    solver = "cp-sat"

    def version(self) -> str:
        return f"ortools {_dist_version('ortools')} (CP-SAT)"

    def load(self, program: IntegerProgram, seed: int, workers: int) -> CpSatSession:
        return CpSatSession(program, seed, workers)
