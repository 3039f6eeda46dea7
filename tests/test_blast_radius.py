"""Blast radius (issue 15, item 4): at most k replicas of a workload per node and per power domain.

The fleet: one site, racks s0-r0 and s0-r1, two 8-GPU nodes each, power never binds. A small
workload of up to 8 replicas: uncapped every method places all 8, so some rack holds 4 or more
and (first fit, fewest powered nodes) some node often more than 2; with ``max_per_node`` 2 and
``max_per_power_domain`` 3 it may place 6 at most, 3 in each rack. Each method is shown both
ways: its uncapped plan breaks the caps (the verifier says ``blast_radius``), its capped plan
keeps them and passes the verifier.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from placement.bounds.bound import group_lp, integer_bound
from placement.construct import heuristics
from placement.construct.greedy import greedy
from placement.construct.keep import keep_current
from placement.core import domain as d
from placement.core.candidates import filter_candidates
from placement.core.explain import explain
from placement.core.moves import displaced
from placement.core.pinned import pinned_errors
from placement.core.validate import validate
from placement.core.verify import RULES, verify
from placement.exact.backends import get_backend
from placement.exact.decode import decode, encode
from placement.exact.model import build
from placement.generator import PER_NODE_CAPS, generate
from placement.run.methods import METHODS, last_plan
from placement.run.solve import solve
from placement.run.timebudget import TimeBudget
from tests.builders import grid_fleet, rack_fleet, run_cli, sample_problem, verified
from wire.convert import problem_from_request, request_from_problem
from wire.files import load_problem, write_json_atomic

Placements = tuple[d.ReplicaPlacement, ...]
NODES = ("s0-r0-n0", "s0-r0-n1", "s0-r1-n0", "s0-r1-n1")
RACKS = ("s0-r0", "s0-r1")
CAPS = {"max_per_node": 2, "max_per_power_domain": 3}  # the methods' caps: 6 replicas at most
AT_CAPS = {"max_per_node": 2, "max_per_power_domain": 4}  # the verifier's: 2 on every node is exactly at both

WHOLE = d.Workload("svc", gpus=1, memory_gib=10.0, min_replicas=4, max_replicas=8)
SHARED = d.Workload("emb", gpus=0, gpu_milli=250, memory_gib=5.0, min_replicas=4, max_replicas=8)


def problem(*workloads: d.Workload, **options: object) -> d.Problem:
    fleet = grid_fleet(nodes=2, racks_per_site=2)
    return d.Problem(fleet, workloads, d.SolveOptions(time_limit_s=10, **options))  # type: ignore[arg-type]


def capped(w: d.Workload, **caps: int) -> d.Workload:
    return dataclasses.replace(w, **(caps or CAPS))


def rp(
    w: str, i: int, node: str, gpus: tuple[int, ...], milli: int = 1000, cap: int = 700
) -> d.ReplicaPlacement:
    rack = node.rsplit("-", 1)[0]
    return d.ReplicaPlacement(w, i, "s0", rack, node, gpus, milli, cap)


def spread_two_per_node(w: str = "svc") -> list[d.ReplicaPlacement]:
    """8 whole-GPU replicas, 2 on each node: every cap of ``AT_CAPS`` met exactly (the boundary)."""
    return [rp(w, 2 * k + j, n, (j,)) for k, n in enumerate(NODES) for j in range(2)]


def blast(violations: list[object]) -> list[tuple[str, str]]:
    return sorted((v.rule, v.subject) for v in violations if v.rule == "blast_radius")  # type: ignore[attr-defined]


def per_node(placements: Placements, w: str) -> Counter[str]:
    return Counter(p.node for p in placements if p.workload == w)


def per_rack(placements: Placements, w: str) -> Counter[str]:
    return Counter(p.power_domain for p in placements if p.workload == w)


# ------------------------------------------------------------------ the verifier


def _move(placements: list[d.ReplicaPlacement], i: int, node: str, gpus: tuple[int, ...]) -> Placements:
    out = list(placements)
    out[i] = rp(out[i].workload, out[i].replica, node, gpus)
    return tuple(out)


@pytest.mark.parametrize(
    ("caps", "mutate", "want"),
    [
        pytest.param(AT_CAPS, lambda ps: tuple(ps), [], id="2 per node, 4 per rack: exactly at both caps"),
        pytest.param(
            AT_CAPS,
            lambda ps: _move(ps, 2, "s0-r0-n0", (2,)),  # a third replica on n0, the rack still at 4
            [("blast_radius", "s0-r0-n0")],
            id="a third replica on one node",
        ),
        pytest.param(
            AT_CAPS,
            lambda ps: _move(ps, 4, "s0-r0-n1", (2,)),  # rack r0 holds 5, n1 holds 3
            [("blast_radius", "s0-r0-n1"), ("blast_radius", "s0/s0-r0")],
            id="a fifth replica in one rack, third on its node",
        ),
        pytest.param(
            {"max_per_power_domain": 4},
            lambda ps: _move(ps, 4, "s0-r0-n1", (2,)),
            [("blast_radius", "s0/s0-r0")],
            id="rack cap only: a fifth replica in one rack",
        ),
        pytest.param(
            {"max_per_node": 2},
            lambda ps: _move(ps, 4, "s0-r0-n1", (2,)),
            [("blast_radius", "s0-r0-n1")],
            id="node cap only: a third replica on one node",
        ),
        pytest.param({}, lambda ps: _move(ps, 4, "s0-r0-n1", (2,)), [], id="no caps: 0 means no limit"),
    ],
)
def test_the_verifier_catches_a_plan_breaking_a_cap(
    caps: dict[str, int],
    mutate: Callable[[list[d.ReplicaPlacement]], Placements],
    want: list[tuple[str, str]],
) -> None:
    p = problem(dataclasses.replace(WHOLE, **caps))
    bad = verified(p, mutate(spread_two_per_node()))
    assert blast(bad) == want
    assert [v for v in bad if v.rule != "blast_radius"] == []  # type: ignore[attr-defined]


def test_the_verifiers_message_names_workload_place_count_and_cap() -> None:
    p = problem(capped(WHOLE, **AT_CAPS))
    bad = verified(p, _move(spread_two_per_node(), 4, "s0-r0-n1", (2,)))
    messages = sorted(v.message for v in bad)  # type: ignore[attr-defined]
    assert "blast_radius" in RULES
    assert any("svc" in m and "s0-r0-n1" in m and "3" in m and "max_per_node 2" in m for m in messages)
    assert any(
        "svc" in m and "s0/s0-r0" in m and "5" in m and "max_per_power_domain 4" in m for m in messages
    )


# ------------------------------------------------------------------ every method, uncapped and capped


def _greedy(p: d.Problem) -> Placements:
    return greedy(filter_candidates(p)).to_placements()


def _heuristic(name: str) -> Callable[[d.Problem], Placements]:
    return lambda p: tuple(heuristics.HEURISTICS[name](p))


def _method(name: str) -> Callable[[d.Problem], Placements]:
    def run(p: d.Problem) -> Placements:
        got = last_plan(METHODS[name].run(filter_candidates(p), TimeBudget.start(10), threading.Event()))
        assert got is not None
        return got.placements

    return run


def _model(p: d.Problem) -> Placements:
    """The per-node model by CP-SAT, tier after tier (placed work, energy, fragmentation)."""
    c = build(filter_candidates(p))
    session = get_backend(d.Backend.ORTOOLS).load(c.program, seed=0, workers=1)
    values = None
    for obj in c.program.objectives:
        res = session.solve(obj, 20.0, values, None, None)
        assert res.status is d.SolveStatus.OPTIMAL and res.values is not None and res.objective is not None
        values = res.values
        session.hold(obj, res.objective)
    assert values is not None
    return decode(c, c.extract(c.tighten(values)))


METHOD_CASES = [
    pytest.param(_greedy, id="greedy"),
    pytest.param(_heuristic("first_fit_decreasing"), id="ffd"),
    pytest.param(_heuristic("best_fit"), id="best_fit"),
    pytest.param(_heuristic("fgd"), id="fgd"),
    pytest.param(_method("lp_guided"), id="lp_guided"),
    pytest.param(_method("polish"), id="polish"),
    pytest.param(_model, id="model-cpsat"),
]


@pytest.mark.parametrize("workload", [pytest.param(WHOLE, id="whole"), pytest.param(SHARED, id="shared")])
@pytest.mark.parametrize("method", METHOD_CASES)
def test_each_method_keeps_the_caps_where_uncapped_it_stacks(
    method: Callable[[d.Problem], Placements], workload: d.Workload
) -> None:
    with_caps = problem(capped(workload))
    free = method(problem(workload))
    assert len(free) == 8 and max(per_rack(free, workload.name).values()) >= 4  # all 8, so 4+ in a rack
    assert blast(verified(with_caps, free)) != []  # which the caps forbid
    got = method(with_caps)
    assert verified(with_caps, got) == []
    assert len(got) == 6  # the most the caps allow: 3 in each rack, at most 2 on a node
    assert per_rack(got, workload.name) == {"s0-r0": 3, "s0-r1": 3}
    assert max(per_node(got, workload.name).values()) == 2


def test_a_capped_workload_does_not_close_a_group_to_workloads_of_its_shape() -> None:
    # a (capped, placed first) meets its cap on both nodes of the one node group; b, of the same
    # shape and uncapped, still has 2 free GPUs there (the greedy's "no room" marks were shared)
    a = d.Workload("a", gpus=1, min_replicas=1, max_replicas=4, max_per_node=1, priority=2)
    b = d.Workload("b", gpus=1, min_replicas=1, max_replicas=2, priority=1)
    p = d.Problem(rack_fleet((2, 2)), (a, b))
    got = greedy(filter_candidates(p), passes=1).to_placements()
    assert verified(p, got) == []
    assert sorted((x.workload, x.node) for x in got) == [("a", "n0"), ("a", "n1"), ("b", "n0"), ("b", "n1")]


def test_the_model_has_one_row_per_node_and_rack_and_they_bind() -> None:
    p = problem(capped(WHOLE, **AT_CAPS))
    c = build(filter_candidates(p))
    names = [ct.name for ct in c.program.constraints if ct.name.startswith("C16")]
    assert sorted(names) == sorted(
        [f"C16 max_per_node[svc,{n}]" for n in NODES]
        + [f"C16 max_per_power_domain[svc,s0/{r}]" for r in RACKS]
    )
    # 4 on one node, 2 of them at a lower level: no variable beyond its bound, only the node's row breaks
    extra = (rp("svc", 6, "s0-r1-n0", (2,), cap=550), rp("svc", 7, "s0-r1-n0", (3,), cap=550))
    stacked = (*spread_two_per_node()[:6], *extra)
    values = encode(c, stacked)
    assert values is not None
    assert sorted(c.program.is_feasible(values)) == ["C16 max_per_node[svc,s0-r1-n0]"]
    ok = encode(c, tuple(spread_two_per_node()))
    assert ok is not None and c.program.is_feasible(ok) == []


@pytest.mark.parametrize(
    ("caps", "most"),
    [
        pytest.param({}, 8, id="no caps: 8 each"),
        pytest.param(CAPS, 6, id="3 per rack: 6 each"),
        pytest.param({"max_per_node": 1}, 4, id="1 per node: 4 each"),
        pytest.param({"max_per_power_domain": 3}, 6, id="rack cap only: 6 each"),
        pytest.param(
            {"max_per_node": 1, "max_per_power_domain": 1}, 0, id="2 racks x 1 < min 4: never placed"
        ),
    ],
)
def test_the_node_group_lp_sees_the_caps(caps: dict[str, int], most: int) -> None:
    # two alike workloads, one LP class: its rows hold the sum of both members' caps
    p = problem(dataclasses.replace(WHOLE, **caps), dataclasses.replace(WHOLE, name="b", **caps))
    lp = group_lp(p)
    assert lp is not None
    work = 2 * most * 1000 * 100  # both workloads, most replicas each, at the top level
    assert work <= lp.bound <= work + 5  # the LP optimum, floored up past its tolerance
    assert work <= (integer_bound(lp) or 0) <= lp.bound


# ------------------------------------------------------------------ filter and explain


@pytest.mark.parametrize(
    ("caps", "need", "words"),
    [
        pytest.param({"max_per_node": 2}, 8, None, id="2 per node x 4 nodes = 8: exactly enough"),
        pytest.param({"max_per_node": 2}, 9, ["2 per node", "4 candidate nodes", "8", "9"], id="one short"),
        pytest.param({"max_per_power_domain": 3}, 6, None, id="3 per rack x 2 racks = 6: exactly enough"),
        pytest.param(
            {"max_per_power_domain": 3},
            7,
            ["3 per power domain", "2 power domains", "6", "7"],
            id="rack short",
        ),
        pytest.param(
            {"max_per_node": 1, "max_per_power_domain": 3},
            5,
            ["1 per node", "3 per power domain", "4", "5"],
            id="both caps, the node cap binds",
        ),
    ],
)
def test_explain_names_blast_radius_when_the_caps_make_min_replicas_impossible(
    caps: dict[str, int], need: int, words: list[str] | None
) -> None:
    w = dataclasses.replace(WHOLE, min_replicas=need, max_replicas=need, **caps)
    p = problem(w)
    assert explain(problem(dataclasses.replace(w, max_per_node=0, max_per_power_domain=0)), "svc") == []
    reasons = explain(p, "svc")
    if words is None:
        assert reasons == []
        assert 0 in filter_candidates(p).by_workload
        return
    assert [r.rule for r in reasons] == ["blast_radius"]
    r = reasons[0]
    assert all(word in r.message for word in words), r.message
    assert (r.requested, r.unit) == (need, "replicas") and r.available < need
    assert 0 not in filter_candidates(p).by_workload  # unplaceable before any method runs
    plan = solve(p)
    assert plan.placements == () and [x.rule for x in plan.unplaced[0].reasons] == ["blast_radius"]


def test_explain_names_the_cap_when_a_plan_leaves_the_workload_out() -> None:
    # two nodes full of other work; svc needs 3 replicas, 1 per node fits 2 of them; uncapped 3 fit on one node
    filler = d.Workload("fill", gpus=8, min_replicas=2, max_replicas=2, priority=5)
    svc = dataclasses.replace(WHOLE, min_replicas=3, max_replicas=3, max_per_node=1)
    p = problem(filler, svc)
    placements = (rp("fill", 0, "s0-r0-n0", tuple(range(8))), rp("fill", 1, "s0-r0-n1", tuple(range(8))))
    plan = heuristics.plan_from(p, placements, "hand")
    reasons = explain(p, "svc", plan=plan)
    assert reasons[0].rule == "blast_radius", reasons
    assert "1 per node" in reasons[0].message and "2 of the 3" in reasons[0].message
    uncapped = problem(filler, dataclasses.replace(svc, max_per_node=0))
    assert [
        r.rule for r in explain(uncapped, "svc", plan=heuristics.plan_from(uncapped, placements, "hand"))
    ] == ["time_limit"]


# ------------------------------------------------------------------ re-planning


def _running(cap: int, budget: int | None = 0) -> d.Workload:
    return dataclasses.replace(
        WHOLE,
        min_replicas=4,
        max_replicas=4,
        max_per_node=cap,
        max_unavailable_count=budget,
        current=tuple(d.CurrentReplica("s0-r0-n0", (j,)) for j in range(4)),
    )


def test_a_lowered_cap_forces_the_moves_beyond_it() -> None:
    p = problem(_running(cap=2), max_moves=0)
    plan = solve(p)
    assert verify(p, plan) == []
    assert per_node(plan.placements, "svc")["s0-r0-n0"] == 2  # keeps k, re-places the rest
    assert (
        sorted((x.workload, x.node, x.forced, x.rule) for x in plan.displaced)
        == [("svc", "s0-r0-n0", True, "blast_radius")] * 2
    )
    assert "max_per_node 2" in plan.displaced[0].message
    assert plan.objective.moves == 2


@pytest.mark.parametrize(
    ("cap", "moves"),
    [pytest.param(4, 0, id="cap 4: all 4 stay"), pytest.param(3, 1, id="cap 3: one moves"),
     pytest.param(1, 3, id="cap 1: three move")],
)  # fmt: skip
def test_keep_current_keeps_at_most_k_and_replaces_the_rest(cap: int, moves: int) -> None:
    p = problem(_running(cap=cap))
    got = keep_current(filter_candidates(p)).to_placements()
    assert verified(p, got) == []
    assert len(got) == 4 and per_node(got, "svc")["s0-r0-n0"] == 4 - moves
    forced = [x for x in displaced(p, got) if x.forced]
    assert [x.rule for x in forced] == ["blast_radius"] * moves


def test_a_move_beyond_the_cap_is_outside_the_disruption_budget() -> None:
    p = problem(_running(cap=2, budget=0), max_moves=0, max_moves_per_site=0)
    kept_two = (
        rp("svc", 0, "s0-r0-n0", (0,)),
        rp("svc", 1, "s0-r0-n0", (1,)),
        rp("svc", 2, "s0-r0-n1", (0,)),
        rp("svc", 3, "s0-r1-n0", (0,)),
    )
    assert verified(p, kept_two) == []
    kept_one = (
        rp("svc", 0, "s0-r0-n0", (0,)),
        *kept_two[2:],
        rp("svc", 1, "s0-r1-n1", (0,)),
    )
    assert verified(p, kept_one) == []  # the node is forced: moves off it are outside the budgets


# ------------------------------------------------------------------ schema


def test_the_caps_survive_the_wire_and_a_json_file(tmp_path: Path) -> None:
    base = sample_problem()
    w0 = dataclasses.replace(base.workloads[0], max_per_node=4, max_per_power_domain=10)
    w1 = dataclasses.replace(base.workloads[1], max_per_node=16)
    p = dataclasses.replace(base, workloads=(w0, w1, *base.workloads[2:]))
    msg = request_from_problem(p)
    assert (msg.workloads[0].max_per_node, msg.workloads[0].max_per_power_domain) == (4, 10)
    assert problem_from_request(msg) == p
    path = tmp_path / "capped.json"
    write_json_atomic(path, msg)
    text = path.read_text()
    assert '"maxPerNode": 4' in text and '"maxPerPowerDomain": 10' in text
    assert load_problem(path) == p
    assert (
        load_problem(path).workloads[2].max_per_node,
        load_problem(path).workloads[2].max_per_power_domain,
    ) == (
        0,
        0,
    )


@pytest.mark.parametrize(
    ("caps", "paths"),
    [
        pytest.param({"max_per_node": -1}, ["workloads[1].maxPerNode"], id="negative per node"),
        pytest.param(
            {"max_per_power_domain": -2}, ["workloads[1].maxPerPowerDomain"], id="negative per domain"
        ),
        pytest.param(
            {"max_per_node": -1, "max_per_power_domain": -1},
            ["workloads[1].maxPerNode", "workloads[1].maxPerPowerDomain"],
            id="both at once",
        ),
        pytest.param({"max_per_node": 0, "max_per_power_domain": 0}, [], id="0 is no limit"),
    ],
)
def test_a_negative_cap_is_an_input_error_at_its_path(caps: dict[str, int], paths: list[str]) -> None:
    base = sample_problem()
    w = dataclasses.replace(base.workloads[1], **caps)
    p = dataclasses.replace(base, workloads=(base.workloads[0], w, *base.workloads[2:]))
    errors = validate(p)
    assert sorted(e.path for e in errors) == paths
    assert all("must not be negative" in e.message for e in errors)


@pytest.mark.parametrize(
    ("caps", "want"),
    [
        pytest.param({"max_per_node": 3}, [], id="3 on one node at cap 3"),
        pytest.param({"max_per_node": 2}, ["workloads[0].current[2]"], id="the third of 3 at cap 2"),
        pytest.param({"max_per_power_domain": 2}, ["workloads[0].current[2]"], id="the third in a rack at 2"),
    ],
)
def test_a_pinned_workload_over_its_cap_is_an_input_error(caps: dict[str, int], want: list[str]) -> None:
    pinned = dataclasses.replace(
        WHOLE, min_replicas=3, max_replicas=3, pinned=True,
        current=tuple(d.CurrentReplica("s0-r0-n0", (j,)) for j in range(3)), **caps,
    )  # fmt: skip
    errors = pinned_errors(problem(pinned), {})
    assert [e.path for e in errors] == want
    assert all("blast_radius" in e.message for e in errors)


# ------------------------------------------------------------------ generator


@pytest.mark.parametrize(
    ("share", "least", "most"),
    [
        pytest.param(0.0, 0.0, 0.0, id="off by default"),
        pytest.param(0.5, 0.3, 0.7, id="half"),
        pytest.param(1.0, 1.0, 1.0, id="every workload"),
    ],
)
def test_the_generator_caps_a_share_of_workloads_and_changes_nothing_else(
    share: float, least: float, most: float
) -> None:
    base = generate(400, seed=3)
    assert generate(400, seed=3, blast_radius_share=0.0) == base  # off: the same problem
    got = generate(400, seed=3, blast_radius_share=share)
    caps = [w.max_per_node for w in got.workloads]
    assert set(caps) <= {0, *PER_NODE_CAPS} and all(w.max_per_power_domain == 0 for w in got.workloads)
    assert least <= sum(1 for c in caps if c) / len(caps) <= most
    assert got.fleet == base.fleet
    assert tuple(dataclasses.replace(w, max_per_node=0) for w in got.workloads) == base.workloads
    assert validate(got) == []


def test_fleetplace_generate_turns_the_caps_on(tmp_path: Path) -> None:
    plain, capped_out = tmp_path / "plain.json", tmp_path / "capped.json"
    assert run_cli("generate", "--gpus", "200", "--seed", "1", "--out", str(plain)).returncode == 0
    got = run_cli(
        "generate", "--gpus", "200", "--seed", "1", "--out", str(capped_out), "--blast-radius-share", "1"
    )
    assert got.returncode == 0, got.stderr
    assert "maxPerNode" not in plain.read_text()
    with_caps = load_problem(capped_out)
    assert all(w.max_per_node in PER_NODE_CAPS for w in with_caps.workloads)
    assert with_caps.fleet == load_problem(plain).fleet
    bad = run_cli(
        "generate", "--gpus", "200", "--out", str(tmp_path / "x.json"), "--blast-radius-share", "1.5"
    )
    assert bad.returncode != 0 and "--blast-radius-share" in bad.stderr
