"""Solver backends behind the narrow interface of ``base.py``.

``get_backend`` picks one by the domain's ``Backend`` enum. The backends are
imported lazily, so that importing the library does not pay for PuLP when CP-SAT
is used (and the other way round).

The helpers below are shared by both backends: what to return when a solve ends
without a solution of its own (the caller's warm start, when it is feasible), and
how a bound is clamped to the right side of the objective.
"""

from __future__ import annotations

import logging

from placement.core.domain import Backend, SolveStatus, StopReason
from placement.exact.backends.base import SolverBackend, TierResult
from placement.exact.model.ir import Direction, IntegerProgram, Objective

log = logging.getLogger(__name__)

__all__ = ["get_backend"]


def get_backend(backend: Backend) -> SolverBackend:
    """The solver backend for ``backend``: ORTOOLS is CP-SAT, PULP is CBC bundled with PuLP."""
    if backend is Backend.ORTOOLS:
        from placement.exact.backends.cpsat import CpSatBackend

        return CpSatBackend()
    if backend is Backend.PULP:
        from placement.exact.backends.pulp_cbc import PulpCbcBackend

        return PulpCbcBackend()
    raise ValueError(f"unknown backend {backend!r}")


def full_hint(program: IntegerProgram, hint: list[int] | None) -> list[int] | None:
    """The warm start to use: the caller's, else the program's own (complete only), else None."""
    if hint is not None:
        if len(hint) != program.num_vars:
            raise ValueError(f"hint has {len(hint)} values for {program.num_vars} variables")
        return hint
    if program.hint and len(program.hint) == program.num_vars:
        return [program.hint[i] for i in range(program.num_vars)]
    return None


def fallback_result(
    program: IntegerProgram,
    objective: Objective,
    hint: list[int] | None,
    stop_reason: StopReason,
    wall_s: float,
) -> TierResult:
    """Result of a solve that stopped without a solution of its own.

    A complete, feasible warm start is still a valid answer (FEASIBLE, no bound);
    otherwise there is no solution.
    """
    if hint is not None and len(hint) == program.num_vars and not program.is_feasible(hint):
        return TierResult(
            status=SolveStatus.FEASIBLE,
            stop_reason=stop_reason,
            values=list(hint),
            objective=objective.value(hint),
            bound=None,
            wall_s=wall_s,
        )
    return TierResult(
        status=SolveStatus.NO_SOLUTION,
        stop_reason=stop_reason,
        values=None,
        objective=None,
        bound=None,
        wall_s=wall_s,
    )


def clamp_bound(objective: Objective, value: int, bound: float) -> float:
    """A proven bound never lies on the wrong side of a reached value (solver tolerances aside)."""
    if objective.direction is Direction.MAXIMIZE:
        return max(bound, float(value))
    return min(bound, float(value))
