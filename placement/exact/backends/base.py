"""The narrow interface every solver backend implements.

A backend loads one ``IntegerProgram`` into a session once; the orchestrator then
asks the session for one objective at a time and, between tiers, fixes the tier
it just optimised (``hold``) before asking for the next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from placement.core.domain import SolveStatus, StopReason
from placement.exact.model.ir import IntegerProgram, Objective


@dataclass(frozen=True)
class Progress:
    """One improvement reported while a tier is being solved.

    ``source`` names where it came from: ``greedy``, ``portfolio`` (the heuristics, LP bounds
    and polished plans beside the solve) or the backend (``ortools``, ``pulp``).
    """

    tier: str
    objective: float
    bound: float | None
    elapsed_s: float
    source: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class TierResult:
    status: SolveStatus  # OPTIMAL, FEASIBLE, INFEASIBLE or NO_SOLUTION for this objective
    stop_reason: StopReason
    values: list[int] | None  # one per variable, None when no solution
    objective: int | None
    bound: float | None  # a proven bound on this objective, None when the solver has none
    wall_s: float


class Session(Protocol):
    def solve(
        self,
        objective: Objective,
        time_limit_s: float,
        hint: list[int] | None,
        progress: ProgressCallback | None,
        stop: threading.Event | None,
        work: float | None = None,
    ) -> TierResult:
        """Optimise ``objective`` from ``hint``. ``work`` (the deterministic mode): the search is
        bounded by this much deterministic work (CP-SAT's deterministic seconds; the PuLP backend
        turns it into CBC nodes) and runs deterministically; ``time_limit_s`` is then only the
        safety net. A tier ended by ``work`` reports ``StopReason.WORK_LIMIT``."""
        ...

    def hold(self, objective: Objective, value: int) -> None:
        """Add the constraint that ``objective`` is at least as good as ``value``."""


class SolverBackend(Protocol):
    name: str  # the Backend's value, e.g. "ortools"
    solver: str  # the solver behind it, as SolveInfo.solvers names it, e.g. "cp-sat"

    def version(self) -> str: ...

    def load(self, program: IntegerProgram, seed: int, workers: int) -> Session: ...
