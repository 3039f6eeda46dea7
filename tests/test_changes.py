"""``placement.changes``: what a rebalance applies, every problem at once with the path the user wrote."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from fleetplace.datasets import tiny_problem
from placement.changes import FleetChanges, Rescale, apply_changes, change_errors, input_path
from placement.core.domain import CurrentReplica, Node, NodeState, Workload
from placement.core.errors import InputError
from placement.core.validate import validate
from wire.convert import changes_and_errors_from_proto, changes_to_proto
from wire.gen.placement.v1 import placement_pb2 as pb

TINY = tiny_problem()
R1, R2, EDGE = "dc-a-r1-n01", "dc-a-r2-n01", "edge-b-r1-n01"
NEW_NODE = Node("dc-a-r2-n02", "dc-a", "dc-a-r2", "H100", 2, 2185)
NEW_WORKLOAD = Workload(name="summarise", gpus=1, memory_gib=20.0, priority=2)

ERRORS = {
    "unknown node to drain": (
        FleetChanges(drain_nodes=("nope",)),
        ["changes.drainNodes[0]: unknown node 'nope'"],
    ),
    "a node drained and down": (
        FleetChanges(drain_nodes=(R1,), down_nodes=(R1,)),
        [f"changes.downNodes[0]: node '{R1}' is also in changes.drainNodes[0]"],
    ),
    "adding a node that exists": (
        FleetChanges(add_nodes=(replace(NEW_NODE, name=R1),)),
        [f"changes.addNodes[0].name: node '{R1}' already exists; remove it first to replace it"],
    ),
    "adding a node twice": (
        FleetChanges(add_nodes=(NEW_NODE, NEW_NODE)),
        ["changes.addNodes[1].name: node 'dc-a-r2-n02' is added twice"],
    ),
    "removing an unknown workload": (
        FleetChanges(remove_workloads=("ghost",)),
        ["changes.removeWorkloads[0]: unknown workload 'ghost'"],
    ),
    "adding a workload that exists": (
        FleetChanges(add_workloads=(replace(NEW_WORKLOAD, name="embedding"),)),
        ["changes.addWorkloads[0].name: workload 'embedding' already exists; remove it first to replace it"],
    ),
    "rescaling an unknown workload": (
        FleetChanges(rescale_workloads=(Rescale("ghost", max_replicas=2),)),
        ["changes.rescaleWorkloads[0].workload: unknown workload 'ghost'"],
    ),
    "rescaling a removed workload": (
        FleetChanges(
            remove_workloads=("embedding",), rescale_workloads=(Rescale("embedding", max_replicas=2),)
        ),
        ["changes.rescaleWorkloads[0].workload: unknown workload 'embedding'"],
    ),
    "rescaling to nothing": (
        FleetChanges(rescale_workloads=(Rescale("embedding"),)),
        ["changes.rescaleWorkloads[0]: give minReplicas, maxReplicas or both"],
    ),
    "rescaling min above max": (
        FleetChanges(rescale_workloads=(Rescale("llama-3-70b-chat", min_replicas=3),)),
        ["changes.rescaleWorkloads[0]: min replicas 3 exceed max replicas 2"],
    ),
    "rescaling to zero": (
        FleetChanges(rescale_workloads=(Rescale("embedding", max_replicas=0),)),
        ["changes.rescaleWorkloads[0].maxReplicas: must be at least 1, got 0"],
    ),
    "every problem at once": (
        FleetChanges(drain_nodes=("a",), down_nodes=("b",), remove_workloads=("c",)),
        [
            "changes.drainNodes[0]: unknown node 'a'",
            "changes.downNodes[0]: unknown node 'b'",
            "changes.removeWorkloads[0]: unknown workload 'c'",
        ],
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_bad_changes_are_reported_with_their_paths(name: str) -> None:
    changes, expected = ERRORS[name]
    assert [str(e) for e in change_errors(TINY, changes)] == expected
    with pytest.raises(InputError) as raised:
        apply_changes(TINY, changes)
    assert [str(e) for e in raised.value.errors] == expected


def test_node_states_follow_drain_down_and_ready() -> None:
    down_first = apply_changes(TINY, FleetChanges(down_nodes=(EDGE,)))
    changed = apply_changes(down_first, FleetChanges(drain_nodes=(R1,), ready_nodes=(EDGE,)))
    state = {n.name: n.state for n in changed.fleet.nodes}
    assert state == {R1: NodeState.DRAINING, R2: NodeState.READY, EDGE: NodeState.READY}
    assert {n.name: n.state for n in down_first.fleet.nodes}[EDGE] is NodeState.DOWN
    # a drained node keeps its current replicas: the plan moves them
    assert changed.workloads == TINY.workloads


def test_a_removed_node_takes_its_current_replicas_with_it() -> None:
    changed = apply_changes(TINY, FleetChanges(remove_nodes=(R2,)))
    assert [n.name for n in changed.fleet.nodes] == [R1, EDGE]
    llama = next(w for w in changed.workloads if w.name == "llama-3-70b-chat")
    assert llama.current == ()  # it ran on R2
    assert validate(changed) == []


def test_added_items_go_last_and_a_remove_then_add_replaces() -> None:
    replaced = replace(NEW_WORKLOAD, name="embedding")
    changed = apply_changes(
        TINY,
        FleetChanges(
            add_nodes=(NEW_NODE,), remove_workloads=("embedding",), add_workloads=(NEW_WORKLOAD, replaced)
        ),
    )
    assert changed.fleet.nodes[-1] == NEW_NODE
    assert [w.name for w in changed.workloads][-2:] == ["summarise", "embedding"]
    assert next(w for w in changed.workloads if w.name == "embedding").gpus == 1
    assert validate(changed) == []


@pytest.mark.parametrize(
    "max_replicas, kept",
    [
        (3, [R1, R2, EDGE]),  # at the count: all kept
        (2, [R2, EDGE]),  # one over: the one on the drained node goes first
        (1, [R2]),
    ],
)
def test_rescaling_below_the_running_replicas_keeps_those_on_ready_nodes(
    max_replicas: int, kept: list[str]
) -> None:
    three = replace(
        NEW_WORKLOAD,
        min_replicas=1,
        max_replicas=3,
        current=(CurrentReplica(R1, (1,)), CurrentReplica(R2, (0,)), CurrentReplica(EDGE, (1,))),
    )
    problem = replace(TINY, workloads=(*TINY.workloads, three))
    changed = apply_changes(
        problem,
        FleetChanges(drain_nodes=(R1,), rescale_workloads=(Rescale("summarise", max_replicas=max_replicas),)),
    )
    w = next(w for w in changed.workloads if w.name == "summarise")
    assert w.max_replicas == max_replicas
    assert sorted(c.node for c in w.current) == sorted(kept)


def test_no_changes_is_the_same_instance() -> None:
    assert apply_changes(TINY, FleetChanges()) is TINY
    assert FleetChanges().summary() == "no changes"
    assert FleetChanges(drain_nodes=("a", "b"), add_workloads=(NEW_WORKLOAD,)).summary() == (
        "drain 2 nodes, add 1 workload"
    )


def test_paths_of_the_changed_instance_map_back_to_what_the_user_wrote() -> None:
    changes = FleetChanges(remove_nodes=(R1,), add_nodes=(NEW_NODE,), remove_workloads=("embedding",),
                           add_workloads=(NEW_WORKLOAD,))  # fmt: skip
    # nodes after: R2 (input 1), EDGE (input 2), NEW (added 0); workloads: the four kept, then the new one
    assert input_path(TINY, changes, "fleet.nodes[0].gpuCount") == "fleet.nodes[1].gpuCount"
    assert input_path(TINY, changes, "fleet.nodes[2].name") == "changes.addNodes[0].name"
    assert input_path(TINY, changes, "workloads[1].priority") == "workloads[2].priority"
    assert input_path(TINY, changes, "workloads[4].gpus") == "changes.addWorkloads[0].gpus"
    assert input_path(TINY, changes, "options.timeLimitS") == "options.timeLimitS"


@pytest.mark.parametrize("cls", [FleetChanges, Rescale], ids=lambda c: c.__name__)
def test_the_proto_messages_have_the_dataclass_fields(cls: type) -> None:
    message = pb.DESCRIPTOR.message_types_by_name[cls.__name__]
    assert {f.name for f in message.fields} == {f.name for f in dataclasses.fields(cls)}


def test_changes_round_trip_through_the_proto() -> None:
    changes = FleetChanges(
        drain_nodes=(R1,),
        down_nodes=(EDGE,),
        ready_nodes=(),
        add_nodes=(NEW_NODE,),
        remove_nodes=(R2,),
        add_workloads=(NEW_WORKLOAD,),
        remove_workloads=("embedding",),
        rescale_workloads=(Rescale("reranker", max_replicas=2), Rescale("whisper-edge", min_replicas=1)),
    )
    back, errors = changes_and_errors_from_proto(changes_to_proto(changes))
    assert errors == []
    assert back == changes


def test_a_bad_enum_in_an_added_node_is_reported_with_its_path() -> None:
    msg = pb.FleetChanges(add_nodes=[pb.Node(name="x", state=99)])
    _, errors = changes_and_errors_from_proto(msg)
    assert [e.path for e in errors] == ["changes.addNodes[0].state"]
