"""The independent verifier (placement.verify): a valid hand-built plan passes, each tampering is named.

The fleet (``tests.builders.reference_fleet``, with the domain dataclasses):

site dc1 (TWO_N, 20 kW -> 10000 W, generator)    links: eu-dc1 5 ms, dc1-dc2 3 ms, eu-edge1 2 ms,
  rackA (N_PLUS_1 of 3, 4.14 kW -> 2760 W): n1 (4 x h100, host 1000 W, 32 CPU), n2 (4 x h100, off)
  rackB (TWO_N, 8 kW -> 4000 W): n3 (2 x h100, host 600 W), n4 (2 x h100, DRAINING), n7 (2 x h100)
site dc2 (N, 10 kW, 10 min battery)                       eu-us 60 ms, us-far 1 ms
  rackC (N, 5 kW): n5 (4 x h100, host 1000 W), n6 (4 x l4, host 200 W, off)
site edge1 (N, 1 kW, no backup): e1 (N, 1 kW): e1n1 (2 x l4, host 150 W)
site far (N, 10 kW, generator): f1 (N, 10 kW): f1n1 (2 x h100, host 500 W, off)

The valid plan:
  llm   (2 GPUs, 60 GiB each, 2..3 replicas, spread over 2 sites, 50 % survive site loss,
         >= 60 % cap = 420 W, h100 only, 5 min backup, <= 20 ms from eu)
        llm[0] n1 GPUs 0,1 at 700 W;  llm[1] n5 GPUs 0,1 at 500 W
  small (1 GPU, 20 GiB, 1..2, 4 CPU)   small[0] n1 GPU 2 at 300 W; small[1] n3 GPU 0 at 700 W
  pair  (1 GPU, 2..2, spread over 2 sites) pair[0] n3 GPU 1 at 700 W; pair[1] n5 GPU 2 at 700 W
  frac  (400 milli, 8 GiB, 2..3, l4 only, <= 10 ms from eu) frac[0], frac[1] e1n1 GPU 0 at 72 W
  huge  (8 GPUs): unplaced

Draws: n1 = 1000 + 700 + 700 + 300 + 60 = 2760 W = rackA's usable cap exactly;
n3 = 600 + 700 + 700 = 2000 W; n5 = 1000 + 500 + 500 + 700 + 60 = 2760 W; e1n1 = 150 + 72 + 16 = 238 W.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from placement.core.domain import (
    Fleet,
    Link,
    Node,
    Plan,
    PowerDomain,
    Problem,
    ReplicaPlacement,
    Site,
    SiteKind,
    Spread,
    SpreadLevel,
    UnplacedWorkload,
    Workload,
)
from placement.core.errors import PlanRejected
from placement.core.objective import throughput_pct
from placement.core.verify import RULES, Violation, check, verify
from tests.builders import (
    H100,
    build_plan,
    reference_fleet,
    reference_placements,
    reference_workloads,
)


def valid() -> tuple[Problem, Plan]:
    problem = Problem(fleet=reference_fleet(), workloads=reference_workloads())
    return problem, build_plan(problem, reference_placements())


def _pairs(violations: list[Violation]) -> set[tuple[str, str]]:
    return {(v.rule, v.subject) for v in violations}


# ------------------------------------------------------------------ the valid plan


def test_valid_plan_passes() -> None:
    problem, plan = valid()
    assert verify(problem, plan) == []
    check(problem, plan)  # does not raise


def test_valid_plan_is_exactly_at_the_rack_cap() -> None:
    problem, plan = valid()
    rack_a = next(d for d in plan.budgets.power_domains if d.name == "rackA")
    assert rack_a.it_kw == pytest.approx(2.76)
    assert rack_a.usable_kw == pytest.approx(2.76)
    assert rack_a.headroom_kw == 0.0
    assert verify(problem, plan) == []


def test_valid_plan_objective_by_hand() -> None:
    _, plan = valid()
    # llm: 3 * 2000 * (100 + 90); small: 1000 * (70 + 100); pair: 1000 * (100 + 100); frac: 2 * 400 * 100
    assert plan.objective.placed_work == 3 * 2000 * 190 + 1000 * 170 + 1000 * 200 + 2 * 400 * 100
    # dc1 4760 W * round(0.1 * 1.2e6); dc2 2760 W * round(0.08 * 1.3e6); edge1 238 W * round(0.2 * 1.5e6)
    assert plan.objective.energy == 4760 * 120000 + 2760 * 104000 + 238 * 300000
    # llm ran on n1 and n2; it stays on n1, leaves n2
    assert plan.objective.moves == 1
    # n1, n3, n5, e1n1 on; one shared GPU
    assert plan.objective.fragmentation == 5
    assert throughput_pct(H100, 500) == 90
    assert throughput_pct(H100, 600) == 0


# ---------------------------------------------------------------- tamperings

Tamper = Callable[[Problem, Plan], tuple[Problem, Plan]]


def _move(plan: Plan, workload: str, replica: int, /, **changes: object) -> tuple[ReplicaPlacement, ...]:
    return tuple(
        dataclasses.replace(p, **changes) if (p.workload, p.replica) == (workload, replica) else p  # type: ignore[arg-type]
        for p in plan.placements
    )


def _replace_placement(workload: str, replica: int, /, **changes: object) -> Tamper:
    def tamper(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
        return problem, build_plan(problem, _move(plan, workload, replica, **changes))

    return tamper


def _add_placement(p: ReplicaPlacement) -> Tamper:
    def tamper(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
        return problem, build_plan(problem, (*plan.placements, p))

    return tamper


def _drop_placement(workload: str, replica: int) -> Tamper:
    def tamper(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
        kept = tuple(p for p in plan.placements if (p.workload, p.replica) != (workload, replica))
        return problem, build_plan(problem, kept)

    return tamper


def _change_workload(name: str, **changes: object) -> Tamper:
    def tamper(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
        workloads = tuple(
            dataclasses.replace(w, **changes) if w.name == name else w  # type: ignore[arg-type]
            for w in problem.workloads
        )
        new = dataclasses.replace(problem, workloads=workloads)
        return new, build_plan(new, plan.placements, plan.unplaced)

    return tamper


def _change_fleet(group: str, name: str, **changes: object) -> Tamper:
    def tamper(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
        items = tuple(
            dataclasses.replace(x, **changes) if x.name == name else x  # type: ignore[arg-type]
            for x in getattr(problem.fleet, group)
        )
        new = dataclasses.replace(problem, fleet=dataclasses.replace(problem.fleet, **{group: items}))
        return new, build_plan(new, plan.placements, plan.unplaced)

    return tamper


def _wrong_domain_budget(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
    b = plan.budgets
    domains = tuple(
        dataclasses.replace(d, feed_load_kw=d.feed_load_kw + 0.001) if d.name == "rackB" else d
        for d in b.power_domains
    )
    return problem, dataclasses.replace(plan, budgets=dataclasses.replace(b, power_domains=domains))


def _wrong_objective(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
    obj = dataclasses.replace(plan.objective, energy=plan.objective.energy - 1)
    return problem, dataclasses.replace(plan, objective=obj)


def _placed_listed_unplaced(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
    return problem, dataclasses.replace(plan, unplaced=(*plan.unplaced, UnplacedWorkload("small", ())))


def _unplaced_missing(problem: Problem, plan: Plan) -> tuple[Problem, Plan]:
    return problem, dataclasses.replace(plan, unplaced=())


RP = ReplicaPlacement

CASES = [
    # (id, tamper, rules expected (exactly), (rule, subject) that must appear, text in its message)
    pytest.param(
        _add_placement(RP("frac", 2, "edge1", "e1", "e1n1", (0,), 400, 72)),
        {"gpu_share"},
        ("gpu_share", "e1n1/gpu0"),
        "1200 milli, at most 1000 (200 over)",
        id="share over 1000 milli on one GPU",
    ),
    pytest.param(
        _replace_placement(
            "small", 1, site="dc1", power_domain="rackA", node="n1", gpu_indices=(2,), power_cap_w=300
        ),
        {"gpu_count"},
        ("gpu_count", "n1/gpu2"),
        "held by 2 whole-GPU replicas",
        id="GPU used twice by whole replicas",
    ),
    pytest.param(
        _replace_placement("pair", 1, node="n5", gpu_indices=(4,)),
        {"gpu_count"},
        ("gpu_count", "pair[1]"),
        "outside 0..3",
        id="GPU index out of range",
    ),
    pytest.param(
        _add_placement(RP("frac", 2, "dc1", "rackA", "n1", (2,), 400, 700)),
        # shared GPU budgeted at 700 W instead of small[0]'s 300 W: rackA 400 W over
        {"gpu_type", "gpu_share", "domain_power"},
        ("gpu_share", "n1/gpu2"),
        "is both whole-used (small[0]) and shared (frac[2])",
        id="fractional replica on a whole-used, unshareable GPU",
    ),
    pytest.param(
        _change_fleet("nodes", "n1", host_power_w=1001),
        {"domain_power"},
        ("domain_power", "rackA"),
        "power domain rackA in site dc1 draws 2761 W, usable cap 2760 W (1 W over)",
        id="rack 1 W over its cap",
    ),
    pytest.param(
        _change_fleet("sites", "dc2", capacity_kw=2.0),
        {"site_power"},
        ("site_power", "dc2"),
        "site dc2 draws 2760 W, usable cap 2000 W (760 W over)",
        id="site over its cap",
    ),
    pytest.param(
        _replace_placement("llm", 1, site="far", power_domain="f1", node="f1n1"),
        {"latency"},
        ("latency", "llm[1]"),
        "latency from eu to site far is 61.0 ms, limit 20.0 ms",
        id="replica outside its latency",
    ),
    pytest.param(
        _change_workload("frac", user_region="ap"),
        {"latency"},
        ("latency", "frac[0]"),
        "no network path from ap to site edge1",
        id="unreachable region",
    ),
    pytest.param(
        _replace_placement("pair", 1, site="dc1", power_domain="rackB", node="n7", gpu_indices=(0,)),
        {"spread"},
        ("spread", "pair"),
        "pair uses 1 distinct sites, at least 2 required",
        id="two replicas in one site when spread asks for two sites",
    ),
    pytest.param(
        _change_workload("llm", survive_site_loss_pct=100),
        {"site_survival"},
        ("site_survival", "llm"),
        "losing site dc1 leaves 1 of 2 replicas of llm, 2 required",
        id="site-loss survival broken",
    ),
    pytest.param(
        _replace_placement("pair", 0, node="n4", gpu_indices=(0,)),
        {"node_state"},
        ("node_state", "pair[0]"),
        "node is DRAINING",
        id="node DRAINING",
    ),
    pytest.param(
        _replace_placement("llm", 1, node="n6", gpu_indices=(0, 1), power_cap_w=72),
        {"gpu_type", "gpu_memory"},  # 72 W is above 60 % of an l4's 72 W
        ("gpu_type", "llm[1]"),
        "GPU type l4 is not allowed (allowed: h100)",
        id="GPU type not allowed",
    ),
    pytest.param(
        _add_placement(RP("frac", 2, "dc2", "rackC", "n5", (3,), 400, 700)),
        {"gpu_type"},  # dc2 is 8 ms from eu over dc1
        ("gpu_type", "frac[2]"),
        "not shareable",
        id="fractional replica on an unshareable type",
    ),
    pytest.param(
        _change_workload("small", memory_gib=81.0),
        {"gpu_memory"},
        ("gpu_memory", "small[0]"),
        "needs 81 GiB per GPU, a h100 has 80 GiB",
        id="whole replica memory does not fit",
    ),
    pytest.param(
        _change_workload("frac", memory_gib=12.5),
        {"gpu_memory"},
        ("gpu_memory", "e1n1/gpu0"),
        "need 25 GiB, a l4 has 24 GiB",
        id="fractional replicas' memory over the shared GPU",
    ),
    pytest.param(
        _change_workload("llm", backup_minutes=15.0),
        {"backup"},
        ("backup", "llm[1]"),
        "site dc2 rides through 10 min, the workload needs 15 min",
        id="backup too short",
    ),
    pytest.param(
        _replace_placement("llm", 1, power_cap_w=300),
        {"power_cap"},
        ("power_cap", "llm[1]"),
        "power cap 300 W is below the workload's floor of 420 W (60% of 700 W)",
        id="power cap below the floor",
    ),
    pytest.param(
        _replace_placement("llm", 1, power_cap_w=600),
        {"power_cap"},
        ("power_cap", "llm[1]"),
        "power cap 600 W is not one of the h100 levels [300, 500, 700]",
        id="power cap not a level",
    ),
    pytest.param(
        _replace_placement("frac", 0, power_cap_w=50),
        {"power_cap"},
        ("power_cap", "frac[0]"),
        "runs uncapped at 72 W",
        id="fractional replica capped",
    ),
    pytest.param(
        _replace_placement("frac", 0, gpu_milli=300),
        {"gpu_share"},
        ("gpu_share", "frac[0]"),
        "holds 300 milli, the workload asks for 400 milli",
        id="gpu_milli inconsistent with the workload",
    ),
    pytest.param(
        _drop_placement("frac", 1),
        {"replicas"},
        ("replicas", "frac"),
        "frac has 1 replicas, at least 2 (or none) are required",
        id="too few replicas",
    ),
    pytest.param(
        _add_placement(RP("small", 2, "dc2", "rackC", "n5", (3,), 1000, 700)),
        {"replicas"},
        ("replicas", "small"),
        "small has 3 replicas, at most 2 allowed",
        id="too many replicas",
    ),
    pytest.param(
        _replace_placement("small", 1, replica=0),
        {"replicas"},
        ("replicas", "small"),
        "replica index 0 of small is used 2 times",
        id="replica index used twice",
    ),
    pytest.param(
        _change_workload("small", cpu_milli=40000),
        {"host_resources"},
        ("host_resources", "n1"),
        "node n1: replicas request 40000 CPU milli, the node has 32000 (8000 over)",
        id="host CPU over",
    ),
    pytest.param(
        _wrong_domain_budget,
        {"budget"},
        ("budget", "power_domains[rackB].feed_load_kw"),
        "feed_load_kw is 1.001 in the plan, recomputed 1.0",
        id="wrong power budget",
    ),
    pytest.param(
        _wrong_objective,
        {"objective"},
        ("objective", "energy"),
        "objective tier energy is",
        id="wrong objective",
    ),
    pytest.param(
        _placed_listed_unplaced,
        {"unplaced"},
        ("unplaced", "small"),
        "small is listed as unplaced but has 2 replicas",
        id="placed workload listed as unplaced",
    ),
    pytest.param(
        _unplaced_missing,
        {"unplaced"},
        ("unplaced", "huge"),
        "huge has no replica and is missing from unplaced",
        id="unplaced workload not listed",
    ),
    pytest.param(
        _replace_placement("small", 1, node="ghost"),
        {"reference"},
        ("reference", "small[1]"),
        "node ghost does not exist",
        id="unknown node",
    ),
    pytest.param(
        _replace_placement("small", 1, site="dc2"),
        {"reference"},
        ("reference", "small[1]"),
        "plan says site dc2, the node is in site dc1",
        id="site inconsistent with the node",
    ),
    pytest.param(
        _replace_placement("small", 1, power_domain="rackA"),
        {"reference"},
        ("reference", "small[1]"),
        "plan says power domain rackA, the node is in power domain rackB",
        id="power domain inconsistent with the node",
    ),
    pytest.param(
        _add_placement(RP("nope", 0, "dc1", "rackA", "n2", (0,), 1000, 700)),
        {"reference", "domain_power"},
        ("reference", "nope[0]"),
        "workload nope does not exist",
        id="unknown workload",
    ),
]


@pytest.mark.parametrize(("tamper", "rules", "pair", "text"), CASES)
def test_tampering_is_named(tamper: Tamper, rules: set[str], pair: tuple[str, str], text: str) -> None:
    problem, plan = tamper(*valid())
    violations = verify(problem, plan)
    assert {v.rule for v in violations} == rules
    assert pair in _pairs(violations)
    messages = [v.message for v in violations if (v.rule, v.subject) == pair]
    assert any(text in m for m in messages), messages
    assert all(v.rule in RULES for v in violations)
    with pytest.raises(PlanRejected) as err:
        check(problem, plan)
    assert len(err.value.violations) == len(violations)


def test_budget_missing_entry_and_top_level_total() -> None:
    problem, plan = valid()
    b = plan.budgets
    tampered = dataclasses.replace(
        b, gpus=b.gpus[1:], energy_cost_per_h=b.energy_cost_per_h * 1.01, sites=b.sites[:-1]
    )
    violations = verify(problem, dataclasses.replace(plan, budgets=tampered))
    first = b.gpus[0]
    assert _pairs(violations) == {
        ("budget", f"gpus[{first.node}/{first.index}]"),
        ("budget", f"sites[{b.sites[-1].name}]"),
        ("budget", "energy_cost_per_h"),
    }


def test_budget_float_tolerance() -> None:
    """A difference of 1e-9 relative passes (floats to 1e-6), 1e-5 relative does not."""
    problem, plan = valid()
    b = plan.budgets

    def scaled(factor: float) -> Plan:
        sites = tuple(dataclasses.replace(s, it_kw=s.it_kw * factor) for s in b.sites)
        return dataclasses.replace(plan, budgets=dataclasses.replace(b, sites=sites))

    assert verify(problem, scaled(1 + 1e-9)) == []
    assert ("budget", "sites[dc1].it_kw") in _pairs(verify(problem, scaled(1 + 1e-5)))


def test_every_violation_is_listed_at_once() -> None:
    problem, plan = valid()
    placements = _move(plan, "pair", 0, node="n4", gpu_indices=(0,))
    placements = tuple(
        dataclasses.replace(p, power_cap_w=600) if (p.workload, p.replica) == ("llm", 1) else p
        for p in placements
    )
    violations = verify(problem, build_plan(problem, placements))
    assert _pairs(violations) == {("node_state", "pair[0]"), ("power_cap", "llm[1]")}


def test_large_plan_verifies() -> None:
    """10,000 whole-GPU replicas on 5,000 nodes: valid, and every rule still runs."""
    gpu = H100
    sites = tuple(Site(f"s{i}", SiteKind.DATACENTER, "eu", 5000.0, 1.2) for i in range(10))
    domains = tuple(PowerDomain(f"d{i}", f"s{i // 10}", 500.0) for i in range(100))
    nodes = tuple(
        Node(f"n{i:04d}", f"s{(i // 50) // 10}", f"d{i // 50}", "h100", 4, 1000) for i in range(5000)
    )
    fleet = Fleet(
        (gpu,), sites, domains, nodes, regions=("eu",), links=tuple(Link("eu", s.name, 5.0) for s in sites)
    )
    workloads = tuple(
        Workload(
            f"w{j}",
            gpus=1,
            memory_gib=40.0,
            min_replicas=10,
            max_replicas=10,
            spread=Spread(SpreadLevel.NODE, 10),
            user_region="eu",
            max_latency_ms=10.0,
        )
        for j in range(1000)
    )
    placements = []
    for j in range(1000):
        for r in range(10):
            k = j * 10 + r
            node = nodes[(k * 7) % 5000]
            placements.append(
                RP(f"w{j}", r, node.site, node.power_domain, node.name, (k // 5000,), 1000, 700)
            )
    problem = Problem(fleet=fleet, workloads=workloads)
    plan = build_plan(problem, tuple(placements), ())
    assert verify(problem, plan) == []
