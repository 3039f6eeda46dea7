"""``GetPlan``, ``ListPlans`` and ``Rebalance`` on a real server on loopback, with a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fleetplace.store import open_store
from server.errors import field_violations
from tests.server_support import dataset, running_server, stub
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb


def tiny() -> pb.PlaceRequest:
    request = dataset("tiny", time_limit_s=30.0)
    request.options.deterministic = True
    return request


@pytest.fixture
def served(store_url: str) -> Iterator[tuple[str, object]]:
    with running_server(store=store_url) as (_server, address):
        channel, client = stub(address)
        try:
            yield store_url, client
        finally:
            channel.close()


def test_rebalance_records_and_the_plan_rpcs_read_it(served: tuple[str, object]) -> None:
    store_url, client = served
    with pytest.raises(grpc.RpcError) as e:
        client.GetPlan(pb.GetPlanRequest(), timeout=30)  # type: ignore[attr-defined]
    assert e.value.code() is grpc.StatusCode.NOT_FOUND and "has no current plan" in e.value.details()
    assert list(client.ListPlans(pb.ListPlansRequest(), timeout=30).plans) == []  # type: ignore[attr-defined]

    # the first one: vision-batch runs today and would be dropped, so the gate refuses it
    refused = client.Rebalance(pb.RebalanceRequest(input=tiny()), timeout=120)  # type: ignore[attr-defined]
    assert [f.rule for f in refused.gate_failures] == ["dropped"]
    assert not refused.HasField("record") and list(refused.dropped) == ["vision-batch"]
    assert refused.moves == refused.unforced_moves == 1  # preempted: the optimiser's choice
    # the move budget reaches the solve: with max_moves 0 vision-batch is kept and the gate passes
    kept = client.Rebalance(pb.RebalanceRequest(input=tiny(), max_moves=0, dry_run=True), timeout=120)  # type: ignore[attr-defined]
    assert list(kept.gate_failures) == [] and kept.unforced_moves == 0 and list(kept.dropped) == []
    first = client.Rebalance(pb.RebalanceRequest(input=tiny(), allow_drop=True), timeout=120)  # type: ignore[attr-defined]
    assert first.record.id == 1 and first.record.current and first.record.requested_by == "rpc"
    assert not first.HasField("previous_id")
    # the plan carries its migration from what ran, make before break, checked in the worker
    assert first.plan.HasField("migration") and first.plan.migration.safe
    kinds = [pb.StepKind.Name(s.kind) for s in first.plan.migration.steps]
    assert kinds[:3] == ["STEP_KIND_STOP", "STEP_KIND_START", "STEP_KIND_WAIT_READY"], kinds

    got = client.GetPlan(pb.GetPlanRequest(), timeout=30)  # type: ignore[attr-defined]
    assert got.record == first.record
    assert convert.plan_from_proto(got.plan) == convert.plan_from_proto(first.plan)
    assert [w.name for w in got.input.workloads] == [w.name for w in tiny().workloads]

    # without input: the current plan's; a drained node, as a dry run: nothing recorded
    changes = pb.FleetChanges(drain_nodes=["dc-a-r2-n01"])
    dry = client.Rebalance(pb.RebalanceRequest(changes=changes, dry_run=True), timeout=120)  # type: ignore[attr-defined]
    assert dry.changed and dry.moves >= 1 and dry.previous_id == 1 and not dry.HasField("record")
    over = client.Rebalance(  # type: ignore[attr-defined]
        pb.RebalanceRequest(changes=changes, fail_if_moves_over=dry.moves - 1), timeout=120
    )
    assert [f.rule for f in over.gate_failures] == ["moves"] and not over.HasField("record")
    second = client.Rebalance(pb.RebalanceRequest(changes=changes), timeout=120)  # type: ignore[attr-defined]
    assert second.record.id == 2 and second.record.parent_id == 1 and second.record.changes == "drain 1 node"
    assert second.moves == dry.moves

    listed = client.ListPlans(pb.ListPlansRequest(limit=5), timeout=30).plans  # type: ignore[attr-defined]
    assert [(p.id, p.current) for p in listed] == [(2, True), (1, False)]
    assert client.GetPlan(pb.GetPlanRequest(id=1), timeout=30).record.id == 1  # type: ignore[attr-defined]
    store = open_store(store_url)  # the CLI's store sees the same
    assert [r.id for r in store.history()] == [2, 1]
    store.close()


def test_bad_requests_name_every_field(tmp_path: Path) -> None:
    with running_server(store=str(tmp_path / "plans.db")) as (_server, address):
        channel, client = stub(address)
        with pytest.raises(grpc.RpcError) as e:
            client.Rebalance(  # type: ignore[attr-defined]
                pb.RebalanceRequest(
                    input=tiny(),
                    changes=pb.FleetChanges(drain_nodes=["nope"]),
                    max_moves=-1,
                    fail_if_site_power_over_pct=120,
                ),
                timeout=60,
            )
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        paths = [v.path for v in field_violations(e.value)]
        assert paths == ["changes.drainNodes[0]", "maxMoves", "failIfSitePowerOverPct"]
        with pytest.raises(grpc.RpcError) as e:  # an added workload's problem, under the change
            client.Rebalance(  # type: ignore[attr-defined]
                pb.RebalanceRequest(
                    input=tiny(), changes=pb.FleetChanges(add_workloads=[pb.Workload(name="x", gpus=5000)])
                ),
                timeout=60,
            )
        assert [str(v) for v in field_violations(e.value)] == [
            "changes.addWorkloads[0].gpus: must be between 1 and 1024, got 5000"
        ]
        with pytest.raises(grpc.RpcError) as e:
            client.ListPlans(pb.ListPlansRequest(limit=5000), timeout=30)  # type: ignore[attr-defined]
        assert [v.path for v in field_violations(e.value)] == ["limit"]
        with pytest.raises(grpc.RpcError) as e:
            client.Rebalance(pb.RebalanceRequest(), timeout=60)  # type: ignore[attr-defined]
        assert e.value.code() is grpc.StatusCode.FAILED_PRECONDITION  # no current plan, no input
        channel.close()


def test_another_rebalance_holding_the_store_is_aborted(tmp_path: Path) -> None:
    path = str(tmp_path / "plans.db")
    with running_server(store=path) as (_server, address):
        channel, client = stub(address)
        holder = open_store(path)
        with holder.lock("rebalance", ttl_s=60):
            with pytest.raises(grpc.RpcError) as e:
                client.Rebalance(pb.RebalanceRequest(input=tiny(), allow_drop=True), timeout=60)  # type: ignore[attr-defined]
            assert e.value.code() is grpc.StatusCode.ABORTED
            assert "another rebalance holds the lock" in e.value.details()
            # a dry run takes no lock
            dry = client.Rebalance(  # type: ignore[attr-defined]
                pb.RebalanceRequest(input=tiny(), allow_drop=True, dry_run=True), timeout=120
            )
            assert dry.changed
        holder.close()
        channel.close()


def test_without_a_store_the_plan_rpcs_say_so() -> None:
    with running_server() as (_server, address):
        channel, client = stub(address)
        for call, request in (("ListPlans", pb.ListPlansRequest()), ("GetPlan", pb.GetPlanRequest())):
            with pytest.raises(grpc.RpcError) as e:
                getattr(client, call)(request, timeout=30)
            assert e.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "no plan store; start it with --store URL" in e.value.details()
        channel.close()
