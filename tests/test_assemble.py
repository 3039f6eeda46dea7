"""The one plan assembly: the engine's plans and the heuristics' plans are assembled alike."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.construct.heuristics import HEURISTICS, plan_from
from placement.core.assemble import UNREAD, assemble, plan_of
from placement.core.candidates import filter_candidates
from placement.core.domain import Problem, SolveInfo, SolveStatus
from placement.core.errors import PlanRejected
from placement.core.explain import PlanView, capacity_reasons
from placement.core.state import FleetState
from placement.core.verify import verify
from placement.generator import generate

INFO = SolveInfo(SolveStatus.FEASIBLE)


def crowded() -> Problem:
    """A fleet asked for about twice what it holds, so every heuristic leaves work out."""
    problem = generate(300, 11)
    return replace(
        problem, workloads=tuple(replace(w, max_replicas=w.max_replicas * 3) for w in problem.workloads)
    )


@pytest.mark.parametrize("method", sorted(HEURISTICS))
def test_a_heuristics_plan_carries_the_engines_reasons(method: str) -> None:
    problem = crowded()
    placements = HEURISTICS[method](problem)
    plan = plan_from(problem, placements, method)
    assert plan.unplaced, "the instance should leave work out"
    engine_plan, bad = assemble(filter_candidates(problem), tuple(placements), INFO)
    assert bad == []
    assert plan.unplaced == engine_plan.unplaced
    assert plan.budgets == engine_plan.budgets and plan.objective == engine_plan.objective
    assert plan.info.backend == f"heuristic:{method}"


def test_a_plan_breaking_a_rule_is_rejected_or_returned_with_its_findings() -> None:
    problem = crowded()
    placements = list(HEURISTICS["first_fit_decreasing"](problem))
    first = placements[0]
    placements.append(replace(first, replica=first.replica + 1000))  # the same GPUs twice
    with pytest.raises(PlanRejected):
        plan_from(problem, placements, "ffd")
    plan = plan_from(problem, placements, "ffd", checked=False)
    assert verify(problem, plan)


def test_placements_naming_an_unknown_node_are_not_read_but_reported() -> None:
    problem = crowded()
    placements = list(HEURISTICS["first_fit_decreasing"](problem))
    placements[0] = replace(placements[0], node="no-such-node")
    plan, bad = plan_of(problem, placements, INFO)
    assert bad  # the verifier names the node
    assert plan.unplaced and all(u.reasons == (UNREAD,) for u in plan.unplaced)


def test_answers_shared_between_alike_workloads_change_no_reason() -> None:
    """``PlanView`` works out alike workloads once: each workload's reasons equal those worked
    out with a view of its own."""
    problem = crowded()
    prepared = filter_candidates(problem)
    placements = HEURISTICS["best_fit"](problem)
    st = FleetState.from_placements(prepared, placements)
    placed = {p.workload for p in placements}
    todo = [i for i, w in enumerate(problem.workloads) if w.name not in placed and i in prepared.by_workload]
    assert len(todo) > 10
    view = PlanView(st)
    shared = [capacity_reasons(prepared, st, w, view) for w in todo]
    alone = [capacity_reasons(prepared, st, w) for w in todo]
    assert shared == alone
    assert len(view._found) < len(todo)  # some workloads were alike
