"""What a caller of PlaceStream and Place can rely on (issue 13, item 2): progress events in time
order, each naming its source, each tier's bound only tightening; and a plan that places
nothing where something could be placed is never FEASIBLE."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from placement import solve
from placement.core.domain import SolveStatus
from placement.core.verify import verify
from placement.exact.model.registry import TIERS
from server.client import PlacementClient
from tests.builders import REPO
from tests.server_support import dataset, running_server
from wire.files import load_problem
from wire.gen.placement.v1 import placement_pb2 as pb

SOURCES = {"greedy", "keep_current", "portfolio", "ortools", "pulp"}


@pytest.fixture(scope="module")
def client() -> Iterator[PlacementClient]:
    with running_server() as (_, address), PlacementClient(address, timeout_s=30) as c:
        yield c


def test_stream_events_are_in_time_order_name_their_source_and_bounds_only_tighten(
    client: PlacementClient,
) -> None:
    events = list(client.place_stream(dataset("mixed", time_limit_s=3)))
    progress = [e for e in events if isinstance(e, pb.Progress)]
    assert isinstance(events[-1], pb.Plan) and len(progress) >= 2
    elapsed = [e.elapsed_s for e in progress]
    assert elapsed == sorted(elapsed), "elapsed_s went back"
    assert {e.tier for e in progress} <= set(TIERS), "a source is not a tier"
    assert all(e.source in SOURCES for e in progress), {e.source for e in progress}
    assert progress[0].source in ("greedy", "keep_current")  # the first plan in hand (mixed runs two)
    for tier in TIERS:
        seen = [e for e in progress if e.tier == tier]
        bounds = [e.bound for e in seen if e.HasField("bound")]
        values = [e.objective for e in seen]
        if tier == "placed_work":  # maximised: the upper bound falls, the objective rises
            assert bounds == sorted(bounds, reverse=True), bounds
            assert values == sorted(values), values
        else:  # minimised: the lower bound rises, the objective falls
            assert bounds == sorted(bounds), bounds
            assert values == sorted(values, reverse=True), values
        pairs = [(e.objective, e.bound if e.HasField("bound") else None) for e in seen]
        assert len(pairs) == len(set(pairs)), "an event that changes nothing was sent"
    final = events[-1].objective.placed_work
    assert all(e.objective <= final for e in progress if e.tier == "placed_work")


@pytest.mark.parametrize("time_limit_s", [0.001, 0.005, 0.01], ids=lambda t: f"limit {t} s")
def test_a_plan_that_places_nothing_where_something_fits_is_not_feasible(time_limit_s: float) -> None:
    """The greedy's share of a very short time limit ends before it places anything: that is no
    solution (the greedy places 195 replicas of this fleet given 30 ms)."""
    problem = load_problem(REPO / "datasets" / "mixed")
    plan = solve(replace(problem, options=replace(problem.options, time_limit_s=time_limit_s)))
    assert verify(problem, plan) == []
    if not plan.placements:
        assert plan.info.status is SolveStatus.NO_SOLUTION, plan.info
    else:
        assert plan.info.status in (SolveStatus.FEASIBLE, SolveStatus.OPTIMAL)
