"""Builders shared by the tests: GPU types, fleets, small hand-solved problems and plan checks.

Plain functions and frozen values, imported by name (``from tests.builders import ...``); no
test file imports from another test file. Where two tests need nearly the same thing, the
difference is a visible parameter (``gpu_t(memory_gib=40.0)``, ``h100(min_power_cap_w=200, ...)``),
never a second copy. Pytest fixtures live in ``tests/conftest.py``; the brute-force oracle in
``tests/oracles.py``; the validation tests' mutations in ``tests/mutations.py``; a running
server in ``tests/server_support.py``.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import alibaba_bench
from placement.core import catalog
from placement.core import domain as d
from placement.core.budgets import compute_budgets
from placement.core.candidates import filter_candidates
from placement.core.domain import (
    Backend,
    CurrentReplica,
    Fleet,
    GpuType,
    Link,
    Node,
    NodeState,
    Plan,
    PowerDomain,
    PowerLevel,
    Problem,
    Reason,
    Redundancy,
    ReplicaPlacement,
    Site,
    SiteKind,
    SolveInfo,
    SolveOptions,
    SolveStatus,
    Spread,
    SpreadLevel,
    UnplacedWorkload,
    Workload,
)
from placement.core.explain import unplaced_reasons
from placement.core.objective import evaluate
from placement.core.state import FleetState
from placement.core.verify import verify

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO / "datasets"
MIXED = DATASETS / "mixed"
CLI = (sys.executable, "-m", "fleetplace.cli")


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (as a user runs it), its output captured as text."""
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------------------- GPU types


def gpu_t(memory_gib: float = 80.0) -> GpuType:
    """Type "T" of the micro cases: idle 50 W, levels 250 W (80%) and 400 W (100%), shareable."""
    return GpuType(
        name="T",
        memory_gib=memory_gib,
        max_power_w=400,
        min_power_cap_w=200,
        idle_power_w=50,
        power_levels=(PowerLevel(250, 80), PowerLevel(400, 100)),
        shareable=True,
    )


GPU_T = gpu_t()  # the candidate filter's and the golden problem's micro cases
GPU_T40 = gpu_t(memory_gib=40.0)  # the brute-force oracle's and the bound's tiny instances
BIG = GpuType(
    name="BIG",
    memory_gib=141.0,
    max_power_w=700,
    min_power_cap_w=200,
    idle_power_w=100,
    power_levels=(PowerLevel(400, 70), PowerLevel(700, 100)),
    shareable=False,
)


G_LEVELS = (PowerLevel(400, 78), PowerLevel(550, 90), PowerLevel(700, 100))
G_TWO_LEVELS = (PowerLevel(400, 78), PowerLevel(700, 100))


def gpu_g(memory_gib: float = 80.0, levels: tuple[PowerLevel, ...] = G_LEVELS) -> GpuType:
    """Type "G" of the heuristics and the packing tests: 700 W, idle 70 W, lowest cap 400 W, shareable."""
    return GpuType(
        name="G",
        memory_gib=memory_gib,
        max_power_w=700,
        min_power_cap_w=400,
        idle_power_w=70,
        power_levels=levels,
        shareable=True,
    )


GPU_G = gpu_g()
HOST_W = 1000  # the host draw of every G node
ROOMY_KW = 100.0

H100_LEVELS = (PowerLevel(300, 70), PowerLevel(500, 90), PowerLevel(700, 100))


def h100(min_power_cap_w: int = 300, levels: tuple[PowerLevel, ...] = H100_LEVELS) -> GpuType:
    """An "h100": 80 GiB, 700 W, idle 60 W, whole GPUs only; the lowest cap and the levels vary."""
    return GpuType(
        name="h100",
        memory_gib=80.0,
        max_power_w=700,
        min_power_cap_w=min_power_cap_w,
        idle_power_w=60,
        power_levels=levels,
        shareable=False,
    )


H100 = h100()  # the reference fleet's
L4 = GpuType(
    name="l4",
    memory_gib=24.0,
    max_power_w=72,
    min_power_cap_w=40,
    idle_power_w=16,
    power_levels=(PowerLevel(50, 80), PowerLevel(72, 100)),
    shareable=True,
)


# -------------------------------------------------------------------------- micro fleets of type T


def site(name: str, kw: float = 100.0, **kw_args: object) -> Site:
    return Site(
        name=name,
        kind=SiteKind.DATACENTER,
        region="eu-west",
        capacity_kw=kw,
        pue=1.0,
        has_generator=True,
        energy_price_per_kwh=0.1,
        **kw_args,  # type: ignore[arg-type]
    )


def node(name: str, s: str = "dc1", pd: str = "r1", gpus: int = 2, host_w: int = 100, **kw: object) -> Node:
    return Node(
        name=name,
        site=s,
        power_domain=pd,
        gpu_type=str(kw.pop("gpu_type", "T")),
        gpu_count=gpus,
        host_power_w=host_w,
        **kw,  # type: ignore[arg-type]
    )


def fleet(
    nodes: tuple[Node, ...],
    sites: tuple[Site, ...] | None = None,
    domains: tuple[PowerDomain, ...] | None = None,
    links: tuple[Link, ...] = (),
) -> Fleet:
    sites = sites or (site("dc1"),)
    if domains is None:
        keys = sorted({(n.site, n.power_domain) for n in nodes})
        domains = tuple(PowerDomain(name=d, site=s, capacity_kw=100.0) for s, d in keys)
    return Fleet(
        gpu_types=(GPU_T, BIG),
        sites=sites,
        power_domains=domains,
        nodes=nodes,
        regions=("eu-west", "ap-south"),
        links=links,
    )


ONE = Workload(name="w", gpus=1, memory_gib=40.0)  # one whole GPU of the micro cases


# ---------------------------------------------------------------------- small hand-solved problems


def one_node(domain_w: int, workload: Workload, gpu_count: int = 1) -> Problem:
    """One 100 W-host node of gpu_count GPUs in one domain capped at domain_w; one site of 1 MW."""
    fleet = Fleet(
        gpu_types=(GPU_T40,),
        sites=(Site(name="s", kind=SiteKind.DATACENTER, region="r", capacity_kw=1000.0, pue=1.2),),
        power_domains=(PowerDomain(name="pd", site="s", capacity_kw=domain_w / 1000.0),),
        nodes=(
            Node(name="n", site="s", power_domain="pd", gpu_type="T", gpu_count=gpu_count, host_power_w=100),
        ),
    )
    return Problem(fleet=fleet, workloads=(workload,))


ONE_GPU = Workload(name="w", gpus=1, memory_gib=10.0)  # one whole GPU of type T at 40 GiB
FULL_WORK = 1000 * 100  # work_milli * top throughput
CAPPED_WORK = 1000 * 80  # at the 250 W level


def two_sites(gpus_a: int, gpus_b: int, workload: Workload) -> Problem:
    """Site a with one node of gpus_a GPUs, site b with one of gpus_b; power never binds."""
    sites = tuple(
        Site(name=s, kind=SiteKind.DATACENTER, region="r", capacity_kw=100.0, pue=1.2) for s in ("a", "b")
    )
    fleet = Fleet(
        gpu_types=(GPU_T40,),
        sites=sites,
        power_domains=tuple(PowerDomain(name=f"pd-{s}", site=s, capacity_kw=100.0) for s in ("a", "b")),
        nodes=tuple(
            Node(name=f"n-{s}", site=s, power_domain=f"pd-{s}", gpu_type="T", gpu_count=c, host_power_w=100)
            for s, c in (("a", gpus_a), ("b", gpus_b))
        ),
    )
    return Problem(fleet=fleet, workloads=(workload,))


def two_domains(tight_w: int, spread: Spread | None = None, replicas: int = 1) -> Problem:
    """One site, rack pd-1 at tight_w with node n1 (one GPU), rack pd-2 ample with node n2 (two GPUs)."""
    base = one_node(tight_w, replace(ONE_GPU, max_replicas=replicas, min_replicas=replicas, spread=spread))
    n1 = replace(base.fleet.nodes[0], name="n1", power_domain="pd-1")
    n2 = replace(n1, name="n2", power_domain="pd-2", gpu_count=2)
    domains = (
        replace(base.fleet.power_domains[0], name="pd-1"),
        replace(base.fleet.power_domains[0], name="pd-2", capacity_kw=10.0),
    )
    return replace(base, fleet=replace(base.fleet, nodes=(n1, n2), power_domains=domains))


A = Workload(name="a", gpus=1, memory_gib=40.0, min_replicas=1, max_replicas=2, priority=2)
B = Workload(name="b", gpus=1, memory_gib=40.0, priority=1)


def golden(backend: Backend, **opts: object) -> Problem:
    """One node, 2 GPUs (idle 50 W, levels 250 W = 80% and 400 W = 100%), host 100 W, rack 750 W.

    Hand-solved: a@400 + a@250 draws 100 + 2*50 + 350 + 200 = 750 W (exactly the cap) and
    earns 2*1000*100 + 2*1000*80 = 360,000; a@400 twice would draw 900 W; a@400 + b@250
    earns 280,000. So b is left out (no GPU left), energy = 750 W * 100,000 n$/h per W.
    """
    f = fleet((node("n1"),), domains=(PowerDomain("r1", "dc1", 0.75),))
    return Problem(f, (A, B), SolveOptions(backend=backend, time_limit_s=10, **opts))  # type: ignore[arg-type]


def tiny_problem(seed: int) -> Problem:
    """A seeded random instance small enough for ``tests.oracles.brute_force``: 2 nodes of 2 type-T GPUs."""
    rng = random.Random(seed)
    n_sites = rng.choice([1, 2])
    sites = tuple(
        Site(
            name=f"s{i}",
            kind=SiteKind.DATACENTER if i == 0 else SiteKind.EDGE,
            region="r",
            capacity_kw=rng.choice([1.0, 1.4, 2.0, 5.0]),
            pue=rng.choice([1.1, 1.3, 1.5]),
            redundancy=Redundancy.N,
            battery_minutes=rng.choice([5.0, 30.0]),
            energy_price_per_kwh=rng.choice([0.05, 0.10, 0.20]),
            carbon_g_per_kwh=100.0,
        )
        for i in range(n_sites)
    )
    n_nodes = 2
    domains = tuple(
        PowerDomain(name=f"pd{i}", site=sites[i % n_sites].name, capacity_kw=rng.choice([0.9, 1.2, 3.0]))
        for i in range(n_nodes)
    )
    nodes = tuple(
        Node(
            name=f"n{i}",
            site=domains[i].site,
            power_domain=domains[i].name,
            gpu_type="T",
            gpu_count=2,
            host_power_w=rng.choice([100, 300]),
        )
        for i in range(n_nodes)
    )
    links = tuple(Link(a="users", b=s.name, latency_ms=5.0 + 10.0 * i) for i, s in enumerate(sites))
    workloads = []
    for i in range(rng.choice([2, 3])):
        fractional = rng.random() < 0.35
        max_r = rng.choice([1, 2])
        min_r = rng.choice(list(range(1, max_r + 1)))
        spread = None
        if max_r == 2 and rng.random() < 0.3:
            spread = Spread(level=rng.choice([SpreadLevel.NODE, SpreadLevel.SITE]), min_distinct=2)
        wl = Workload(
            name=f"w{i}",
            gpus=0 if fractional else rng.choice([1, 1, 2]),
            gpu_milli=rng.choice([300, 500, 700]) if fractional else 0,
            memory_gib=rng.choice([10.0, 25.0]),
            min_replicas=min_r,
            max_replicas=max_r,
            spread=spread,
            survive_site_loss_pct=rng.choice([0, 0, 50]) if n_sites == 2 else 0,
            user_region="users",
            max_latency_ms=rng.choice([0.0, 0.0, 10.0]),
            priority=rng.choice([1, 2, 5]),
            min_power_cap_pct=rng.choice([0, 0, 80]),
        )
        if not fractional and wl.gpus == 1 and rng.random() < 0.3:
            wl = replace(wl, current=(CurrentReplica(node=rng.choice(nodes).name, gpu_indices=(0,)),))
        workloads.append(wl)
    fleet = Fleet(
        gpu_types=(GPU_T40,), sites=sites, power_domains=domains, nodes=nodes, regions=("users",), links=links
    )
    return Problem(fleet=fleet, workloads=tuple(workloads), options=SolveOptions(time_limit_s=20, seed=seed))


# -------------------------------------------------------------------------------- fleets of type G


def grid_fleet(
    nodes: int = 1,
    rack_w: float | None = None,
    site_w: float | None = None,
    sites: int = 1,
    racks_per_site: int = 1,
) -> Fleet:
    """``sites`` sites of ``racks_per_site`` racks; ``nodes`` 8-GPU nodes per rack."""
    site_list, racks, node_list = [], [], []
    for s in range(sites):
        sname = f"s{s}"
        site_list.append(
            Site(
                sname,
                SiteKind.DATACENTER,
                "r",
                site_w / 1000 if site_w else ROOMY_KW,
                1.2,
                has_generator=True,
            )
        )
        for r in range(racks_per_site):
            rname = f"{sname}-r{r}"
            racks.append(PowerDomain(rname, sname, rack_w / 1000 if rack_w else ROOMY_KW))
            for n in range(nodes):
                node_list.append(Node(f"{rname}-n{n}", sname, rname, "G", 8, HOST_W))
    return Fleet(
        gpu_types=(GPU_G,), sites=tuple(site_list), power_domains=tuple(racks), nodes=tuple(node_list)
    )


def rack_fleet(gpus: tuple[int, ...] = (2, 2), cpu_milli: int = 0, rack_w: int | None = None) -> Fleet:
    """One site, one rack; a node per entry of ``gpus`` with that many GPUs."""
    nodes = tuple(
        Node(f"n{k}", "s", "r", "G", count, HOST_W, cpu_milli=cpu_milli) for k, count in enumerate(gpus)
    )
    rack_kw = rack_w / 1000 if rack_w is not None else 100.0
    return Fleet(
        gpu_types=(GPU_G,),
        sites=(Site("s", SiteKind.DATACENTER, "r", 100.0, 1.2, has_generator=True),),
        power_domains=(PowerDomain("r", "s", rack_kw),),
        nodes=nodes,
    )


def frac(name: str, milli: int, cpu: int = 0) -> Workload:
    return Workload(name, gpus=0, gpu_milli=milli, cpu_milli=cpu)


def whole(name: str, gpus: int = 1, cpu: int = 0) -> Workload:
    return Workload(name, gpus=gpus, cpu_milli=cpu)


# ------------------------------------------------------------------ the reference fleet (verifier)


def reference_fleet() -> Fleet:
    """The verifier's reference fleet; tests/test_verify.py's docstring draws it and the valid plan."""
    dc = SiteKind.DATACENTER
    return Fleet(
        gpu_types=(H100, L4),
        sites=(
            Site("dc1", dc, "eu", 20.0, 1.2, Redundancy.TWO_N, has_generator=True, energy_price_per_kwh=0.1),
            Site("dc2", dc, "eu", 10.0, 1.3, Redundancy.N, battery_minutes=10.0, energy_price_per_kwh=0.08),
            Site("edge1", SiteKind.EDGE, "eu", 1.0, 1.5, Redundancy.N, energy_price_per_kwh=0.2),
            Site("far", dc, "us", 10.0, 1.1, Redundancy.N, has_generator=True, energy_price_per_kwh=0.05),
        ),
        power_domains=(
            PowerDomain("rackA", "dc1", 4.14, Redundancy.N_PLUS_1, modules=3),
            PowerDomain("rackB", "dc1", 8.0, Redundancy.TWO_N),
            PowerDomain("rackC", "dc2", 5.0, Redundancy.N),
            PowerDomain("e1", "edge1", 1.0, Redundancy.N),
            PowerDomain("f1", "far", 10.0, Redundancy.N),
        ),
        nodes=(
            Node("n1", "dc1", "rackA", "h100", 4, 1000, cpu_milli=32000, host_memory_mib=262144),
            Node("n2", "dc1", "rackA", "h100", 4, 1000),
            Node("n3", "dc1", "rackB", "h100", 2, 600),
            Node("n4", "dc1", "rackB", "h100", 2, 600, state=NodeState.DRAINING),
            Node("n7", "dc1", "rackB", "h100", 2, 600),
            Node("n5", "dc2", "rackC", "h100", 4, 1000),
            Node("n6", "dc2", "rackC", "l4", 4, 200),
            Node("e1n1", "edge1", "e1", "l4", 2, 150),
            Node("f1n1", "far", "f1", "h100", 2, 500),
        ),
        regions=("eu", "us", "ap"),
        links=(
            Link("eu", "dc1", 5.0),
            Link("dc1", "dc2", 3.0),
            Link("eu", "edge1", 2.0),
            Link("eu", "us", 60.0),
            Link("us", "far", 1.0),
        ),
    )


def reference_workloads() -> tuple[Workload, ...]:
    return (
        Workload(
            "llm",
            gpus=2,
            memory_gib=120.0,
            allowed_gpu_types=("h100",),
            min_replicas=2,
            max_replicas=3,
            spread=Spread(SpreadLevel.SITE, 2),
            survive_site_loss_pct=50,
            backup_minutes=5.0,
            user_region="eu",
            max_latency_ms=20.0,
            priority=3,
            min_power_cap_pct=60,
            current=(CurrentReplica("n1", (0, 1)), CurrentReplica("n2", (0, 1))),
        ),
        Workload("small", gpus=1, memory_gib=20.0, max_replicas=2, cpu_milli=4000, host_memory_mib=16384),
        Workload(
            "pair",
            gpus=1,
            memory_gib=10.0,
            min_replicas=2,
            max_replicas=2,
            spread=Spread(SpreadLevel.SITE, 2),
        ),
        Workload(
            "frac",
            gpus=0,
            gpu_milli=400,
            memory_gib=8.0,
            allowed_gpu_types=("l4",),
            min_replicas=2,
            max_replicas=3,
            user_region="eu",
            max_latency_ms=10.0,
        ),
        Workload("huge", gpus=8, memory_gib=400.0),
    )


def reference_placements() -> tuple[ReplicaPlacement, ...]:
    """The valid plan on the reference fleet (``huge`` unplaced: ``UNPLACED``)."""
    rp = ReplicaPlacement
    return (
        rp("llm", 0, "dc1", "rackA", "n1", (0, 1), 1000, 700),
        rp("llm", 1, "dc2", "rackC", "n5", (0, 1), 1000, 500),
        rp("small", 0, "dc1", "rackA", "n1", (2,), 1000, 300),
        rp("small", 1, "dc1", "rackB", "n3", (0,), 1000, 700),
        rp("pair", 0, "dc1", "rackB", "n3", (1,), 1000, 700),
        rp("pair", 1, "dc2", "rackC", "n5", (2,), 1000, 700),
        rp("frac", 0, "edge1", "e1", "e1n1", (0,), 400, 72),
        rp("frac", 1, "edge1", "e1", "e1n1", (0,), 400, 72),
    )


UNPLACED = (UnplacedWorkload("huge", (Reason("gpu_count", "no node has 8 GPUs", 9),)),)


def build_plan(
    problem: Problem,
    placements: tuple[ReplicaPlacement, ...],
    unplaced: tuple[UnplacedWorkload, ...] = UNPLACED,
) -> Plan:
    """A plan whose budgets and objective are recomputed, so only the tampered rule can fail."""
    return Plan(
        placements=placements,
        budgets=compute_budgets(problem, placements),
        unplaced=unplaced,
        objective=evaluate(problem, placements),
        info=SolveInfo(status=SolveStatus.FEASIBLE),
    )


# ----------------------------------------------------------------- two regions (partitioned solve)


CATALOG_H100 = catalog.gpu_type(catalog.H100)


# Two regions of two sites each; one rack and two 8-GPU nodes per site (16 GPUs a site).
SITES = ("a1", "a2", "b1", "b2")


def _region_site(name: str) -> Site:
    return Site(
        name, SiteKind.DATACENTER, "ra" if name.startswith("a") else "rb", 100.0, 1.2, has_generator=True
    )


def two_region_fleet() -> Fleet:
    nodes = tuple(
        Node(f"{s}-n{i}", s, f"{s}-r", catalog.H100, 8, catalog.host_power_w(catalog.H100, 8))
        for s in SITES
        for i in (1, 2)
    )
    links = (
        Link("ra", "a1", 2.0),
        Link("ra", "a2", 3.0),
        Link("rb", "b1", 2.0),
        Link("rb", "b2", 3.0),
        Link("ra", "rb", 50.0),
        Link("rc", "a1", 5.0),  # rc reaches a1 and b1 in 5 ms, the other two in 10 ms
        Link("rc", "b1", 5.0),
    )
    return Fleet(
        gpu_types=(CATALOG_H100,),
        sites=tuple(_region_site(s) for s in SITES),
        power_domains=tuple(PowerDomain(f"{s}-r", s, 100.0) for s in SITES),
        nodes=nodes,
        regions=("ra", "rb", "rc"),
        links=links,
    )


def W(name: str, **kw: object) -> Workload:
    return Workload(name=name, **{"gpus": 1, "memory_gib": 40.0, **kw})  # type: ignore[arg-type]


# in region a only (latency), 24 of a's 32 GPUs at max replicas: region a is the fuller group
LOCAL_A = W("local-a", gpus=8, min_replicas=1, max_replicas=3, user_region="ra", max_latency_ms=5, priority=3)
ANYWHERE = W("anywhere", gpus=4, min_replicas=1, max_replicas=2, priority=2)  # spans: to the freer group, b
HOME_A = W("home-a", max_replicas=2, current=(CurrentReplica("a1-n1", (0,)),))  # spans, but fits at home
SPREAD_OK = W(
    "spread-ok", min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.SITE, 2)
)  # one group has 2 sites


NEAR_C = {"user_region": "rc", "max_latency_ms": 6.0}  # a1 and b1 only: one site in each group
SPREAD_X = W("spread-x", min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.SITE, 2), **NEAR_C)
SURVIVE_X = W("survive-x", min_replicas=2, max_replicas=2, survive_site_loss_pct=50, **NEAR_C)
NODE_SPREAD_C = W(
    "node-spread-c", min_replicas=2, max_replicas=2, spread=Spread(SpreadLevel.NODE, 2), **NEAR_C
)


TOO_BIG = W("too-big", memory_gib=120.0)  # no GPU has the memory: no candidate anywhere


def two_region_problem(time_limit_s: float = 10.0) -> Problem:
    workloads = (LOCAL_A, ANYWHERE, HOME_A, SPREAD_OK, SPREAD_X, SURVIVE_X, NODE_SPREAD_C, TOO_BIG)
    return Problem(two_region_fleet(), workloads, SolveOptions(time_limit_s=time_limit_s))


# ------------------------------------------------------------------ wire samples (every field set)


def sample_problem() -> d.Problem:
    """A small valid instance that sets every field, most of them away from their defaults."""
    h100 = d.GpuType(
        name="H100",
        memory_gib=80.0,
        max_power_w=700,
        min_power_cap_w=200,
        idle_power_w=60,
        power_levels=(d.PowerLevel(350, 70), d.PowerLevel(500, 88), d.PowerLevel(700, 100)),
        shareable=False,
    )
    l4 = d.GpuType(
        name="L4",
        memory_gib=24.0,
        max_power_w=72,
        min_power_cap_w=40,
        idle_power_w=16,
        power_levels=(d.PowerLevel(72, 100),),
        shareable=True,
    )
    fleet = d.Fleet(
        gpu_types=(h100, l4),
        sites=(
            d.Site(
                name="s1",
                kind=d.SiteKind.DATACENTER,
                region="eu-west",
                capacity_kw=120.5,
                pue=1.25,
                redundancy=d.Redundancy.N_PLUS_1,
                modules=3,
                battery_minutes=10.0,
                has_generator=True,
                energy_price_per_kwh=0.21,
                carbon_g_per_kwh=120.0,
            ),
            d.Site(
                name="s2",
                kind=d.SiteKind.EDGE,
                region="eu-north",
                capacity_kw=20.0,
                pue=1.4,
                redundancy=d.Redundancy.TWO_N,
                battery_minutes=5.0,
                energy_price_per_kwh=0.1,
                carbon_g_per_kwh=30.0,
            ),
        ),
        power_domains=(
            d.PowerDomain(name="s1-a", site="s1", capacity_kw=60.0, redundancy=d.Redundancy.TWO_N),
            d.PowerDomain(name="s1-b", site="s1", capacity_kw=60.0),
            d.PowerDomain(
                name="s2-a", site="s2", capacity_kw=20.0, redundancy=d.Redundancy.N_PLUS_1, modules=4
            ),
        ),
        nodes=(
            d.Node("n1", "s1", "s1-a", "H100", 8, 1200, d.NodeState.READY, 64000, 512000),
            d.Node("n2", "s1", "s1-b", "H100", 8, 1200, d.NodeState.DRAINING),
            d.Node("n3", "s2", "s2-a", "L4", 4, 300, d.NodeState.DOWN, 16000, 0),
        ),
        regions=("eu-users",),
        links=(d.Link("eu-users", "s1", 5.5), d.Link("s1", "s2", 10.0)),
    )
    workloads = (
        d.Workload(
            name="llm",
            gpus=2,
            memory_gib=140.0,
            allowed_gpu_types=("H100",),
            min_replicas=2,
            max_replicas=4,
            spread=d.Spread(d.SpreadLevel.SITE, 2),
            survive_site_loss_pct=50,
            backup_minutes=5.0,
            user_region="eu-users",
            max_latency_ms=20.0,
            priority=3,
            min_power_cap_pct=50,
            cpu_milli=8000,
            host_memory_mib=65536,
            current=(d.CurrentReplica("n1", (0, 1)), d.CurrentReplica("n2", (2, 3))),
            move_cost=3,
            max_unavailable_pct=50,
        ),
        d.Workload(
            name="embed",
            gpus=0,
            gpu_milli=250,
            memory_gib=6.0,
            allowed_gpu_types=("L4",),
            spread=d.Spread(d.SpreadLevel.POWER_DOMAIN, 1),
            current=(d.CurrentReplica("n3", (1,)),),
            move_cost=0,
            max_unavailable_count=1,
        ),
        d.Workload(name="plain"),
    )
    options = d.SolveOptions(
        backend=d.Backend.PULP,
        time_limit_s=12.5,
        seed=7,
        workers=4,
        energy_metric=d.EnergyMetric.CARBON,
        optimise_energy=False,
        optimise_moves=False,
        optimise_fragmentation=True,
        max_moves=5,
        max_moves_per_site=2,
        max_moves_per_power_domain=0,
    )
    return d.Problem(fleet=fleet, workloads=workloads, options=options)


def sample_plan(bound: float | None = 123456.0, gap: float | None = 0.01) -> d.Plan:
    budget = d.PowerBudget(
        kind="site",
        name="s1",
        site="s1",
        redundancy=d.Redundancy.N_PLUS_1,
        feeds=3,
        capacity_kw=120.5,
        usable_kw=80.333,
        it_kw=7.8,
        facility_kw=9.75,
        headroom_kw=72.533,
        utilisation_pct=9.7,
        feed_rating_kw=40.1667,
        feed_load_kw=2.6,
        failure_feed_load_kw=3.9,
        survives_failure=True,
    )
    return d.Plan(
        placements=(
            d.ReplicaPlacement("llm", 0, "s1", "s1-a", "n1", (0, 1), 1000, 500),
            d.ReplicaPlacement("embed", 0, "s2", "s2-a", "n3", (2,), 250, 72),
        ),
        budgets=d.PowerBudgets(
            gpus=(d.GpuBudget("n1", 0, 500, 1000, ("llm",)), d.GpuBudget("n1", 2, 60, 0, ())),
            nodes=(
                d.NodeBudget("n1", "s1", "s1-a", True, 1200, 1480),
                d.NodeBudget("n2", "s1", "s1-b", False, 0, 0),
            ),
            power_domains=(
                dataclasses.replace(budget, kind="power_domain", name="s1-a", redundancy=d.Redundancy.TWO_N),
            ),
            sites=(budget,),
            energy_cost_per_h=2.05,
            carbon_kg_per_h=1.17,
        ),
        unplaced=(
            d.UnplacedWorkload(
                "plain",
                (d.Reason("latency", "no site within 20 ms", 3), d.Reason("site_power", "1.2 kW short")),
            ),
        ),
        objective=d.ObjectiveTiers(
            placed_work=90_000_000_000, energy=3_000_000_000_000, moves=1, fragmentation=2
        ),
        info=d.SolveInfo(
            status=d.SolveStatus.FEASIBLE,
            stop_reason=d.StopReason.TIME_LIMIT,
            bound=bound,
            gap=gap,
            backend="ortools",
            solver_version="9.12",
            seed=7,
            wall_s=1.5,
            code_revision="abc123",
            started_at="2026-01-01T00:00:00Z",
            method="lp_guided+polish+model",
            solvers=("glop", "cp-sat"),
        ),
        displaced=(
            d.Displaced("llm", "n2", (2, 3), True, "node_state", "node n2 is DRAINING", to_node="n1"),
            d.Displaced(
                "embed", "n3", (1,), False, "preempted", "taken by llm (priority 3 > 1)", evictor="llm"
            ),
        ),
    )


# ------------------------------------------------------------------------------------- plan checks


def verified(problem: Problem, placements: tuple[ReplicaPlacement, ...]) -> list[object]:
    prepared = filter_candidates(problem)
    plan = Plan(
        placements,
        compute_budgets(problem, placements),
        tuple(unplaced_reasons(prepared, FleetState.from_placements(prepared, placements))),
        evaluate(problem, placements),
        SolveInfo(SolveStatus.FEASIBLE),
    )
    return list(verify(problem, plan))


def checked(problem: Problem, placements: tuple[ReplicaPlacement, ...]) -> dict[str, ReplicaPlacement]:
    plan = alibaba_bench.plan_of(problem, placements, None)
    assert verify(problem, plan) == []
    return {p.workload: p for p in placements}
