"""The one plan assembly: placements become a verified ``Plan``, whoever placed them.

``assemble(prepared, placements, info)`` adds to the placements their power budgets
(``placement.core.budgets``), the reasons for every workload left out (``placement.explain``,
read from the plan's own ``FleetState``, until ``explain_until``), the objective
(``placement.core.objective``) and the given ``SolveInfo``, then runs the verifier; it
returns the plan with the verifier's findings, which the caller must act on (a plan
with findings never leaves the library). The engine (``placement.solve``) assembles
every plan it may return here; ``plan_of`` does the same for placements made outside
it (the heuristics, the benchmarks), building the filter's view of the left-out
workloads itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from placement.core.budgets import compute_budgets
from placement.core.candidates import Prepared, filter_candidates
from placement.core.domain import Plan, Problem, Reason, ReplicaPlacement, SolveInfo, UnplacedWorkload
from placement.core.explain import unplaced_reasons
from placement.core.moves import displaced, move_curve
from placement.core.objective import evaluate
from placement.core.state import FleetState
from placement.core.verify import verify


def assemble(
    prepared: Prepared,
    placements: tuple[ReplicaPlacement, ...],
    info: SolveInfo,
    explain_until: float | None = None,
    timing: dict[str, float] | None = None,
) -> tuple[Plan, list[object]]:
    """Assemble and verify a plan; returns it with the verifier's findings.

    ``prepared`` must hold the filter's view of every workload the placements leave out
    (``filter_candidates`` of the problem, or of those workloads). Unplaced work is
    explained most valuable first until ``explain_until`` (monotonic seconds; None: all
    of it). ``timing["assemble_s"]`` receives the seconds spent outside the explanations.
    """
    problem = prepared.problem
    t0 = time.monotonic()
    budgets = compute_budgets(problem, placements)
    try:
        state: FleetState | None = FleetState.from_placements(prepared, placements)
    except (KeyError, ValueError):  # an unknown workload, node or power cap: the verifier says which
        state = None
    t1 = time.monotonic()
    unplaced = (
        tuple(unplaced_reasons(prepared, state, explain_until))
        if state is not None
        else _unread(problem, placements)
    )
    t2 = time.monotonic()
    moves = displaced(problem, placements)
    plan = Plan(
        placements=placements,
        budgets=budgets,
        unplaced=unplaced,
        objective=evaluate(problem, placements),
        info=info,
        displaced=moves,
        move_curve=move_curve(problem, moves),
    )
    bad: list[object] = list(verify(problem, plan))
    if timing is not None:
        timing["assemble_s"] = time.monotonic() - t0 - (t2 - t1)
    return plan, bad


def plan_of(
    problem: Problem,
    placements: Iterable[ReplicaPlacement],
    info: SolveInfo,
    explain_until: float | None = None,
) -> tuple[Plan, list[object]]:
    """``assemble`` for placements made outside the engine: the filter runs on the left-out workloads only."""
    placements = tuple(placements)
    placed = {p.workload for p in placements}
    missing = [i for i, w in enumerate(problem.workloads) if w.name not in placed]
    return assemble(filter_candidates(problem, missing), placements, info, explain_until)


UNREAD = Reason(
    "unread", "not analysed: the placements name what the problem does not hold (see the verifier)", 0
)


def _unread(problem: Problem, placements: tuple[ReplicaPlacement, ...]) -> tuple[UnplacedWorkload, ...]:
    placed = {p.workload for p in placements}
    return tuple(UnplacedWorkload(w.name, (UNREAD,)) for w in problem.workloads if w.name not in placed)
