"""The bundled datasets under ``datasets/``, built by deterministic functions.

``python -m fleetplace.datasets [--out DIR]`` rewrites every file (default: the repo's
``datasets/``). The files are the protobuf JSON mapping of ``placement.v1`` messages
(``PlaceRequest`` for the fleets, ``Fleet`` with only ``gpuTypes`` for the catalog), written
through ``wire.convert.request_from_problem`` so that they always match the schema; a test
checks that the committed files equal what this module writes.

* ``catalog.json``: the GPU catalog (``placement.core.catalog.CATALOG``).
* ``tiny/``: a hand-solvable fleet whose optimum ``tiny/README.md`` works out by hand.
* ``mixed/``: a realistic mixed fleet (4 data centres, 5 edge sites, 4 regions, 328 GPUs,
  34 inference services).
* ``infeasible/``: one workload per reason a workload cannot be placed.

Each builder returns a domain ``Problem``; ``write_all`` converts and writes them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import Message

from placement.core import catalog
from placement.core.domain import (
    CurrentReplica,
    Fleet,
    GpuType,
    Link,
    Node,
    NodeState,
    PowerDomain,
    Problem,
    Redundancy,
    Site,
    SiteKind,
    SolveOptions,
    Spread,
    SpreadLevel,
    Workload,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = REPO_ROOT / "datasets"
PROBLEM_FILE = "problem.json"


def _types(*names: str) -> tuple[GpuType, ...]:
    return tuple(catalog.gpu_type(n) for n in names)


def _node(
    site: str,
    rack: str,
    index: int,
    gpu_type: str,
    gpu_count: int,
    state: NodeState = NodeState.READY,
) -> Node:
    return Node(
        name=f"{rack}-n{index:02d}",
        site=site,
        power_domain=rack,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        host_power_w=catalog.host_power_w(gpu_type, gpu_count),
        state=state,
    )


# ------------------------------------------------------------------------------ tiny


def tiny_problem() -> Problem:
    """Two sites, three nodes, five workloads; the optimum is in ``datasets/tiny/README.md``."""
    fleet = Fleet(
        gpu_types=_types(catalog.H100, catalog.L4),
        sites=(
            Site(
                name="dc-a",
                kind=SiteKind.DATACENTER,
                region="eu-west",
                capacity_kw=20.0,
                pue=1.2,
                redundancy=Redundancy.TWO_N,
                battery_minutes=10.0,
                has_generator=True,
                energy_price_per_kwh=0.10,
                carbon_g_per_kwh=300.0,
            ),
            Site(
                name="edge-b",
                kind=SiteKind.EDGE,
                region="eu-west",
                capacity_kw=1.0,
                pue=1.5,
                redundancy=Redundancy.N,
                battery_minutes=5.0,
                has_generator=False,
                energy_price_per_kwh=0.20,
                carbon_g_per_kwh=300.0,
            ),
        ),
        power_domains=(
            PowerDomain(name="dc-a-r1", site="dc-a", capacity_kw=3.4, redundancy=Redundancy.N),
            PowerDomain(name="dc-a-r2", site="dc-a", capacity_kw=8.0, redundancy=Redundancy.TWO_N),
            PowerDomain(name="edge-b-r1", site="edge-b", capacity_kw=1.0, redundancy=Redundancy.N),
        ),
        nodes=(
            _node("dc-a", "dc-a-r1", 1, catalog.H100, 2),
            _node("dc-a", "dc-a-r2", 1, catalog.H100, 2),
            _node("edge-b", "edge-b-r1", 1, catalog.L4, 2),
        ),
        regions=("users-north",),
        links=(Link("users-north", "edge-b", 2.0), Link("users-north", "dc-a", 25.0)),
    )
    workloads = (
        Workload(
            name="llama-3-70b-chat",
            gpus=2,
            memory_gib=140.0,
            allowed_gpu_types=(catalog.H100,),
            min_replicas=1,
            max_replicas=2,
            priority=3,
            current=(CurrentReplica("dc-a-r2-n01", (0, 1)),),
        ),
        Workload(name="embedding", gpus=0, gpu_milli=500, memory_gib=10.0, priority=2),
        Workload(name="reranker", gpus=0, gpu_milli=500, memory_gib=10.0, priority=2),
        Workload(
            name="whisper-edge",
            gpus=1,
            memory_gib=10.0,
            user_region="users-north",
            max_latency_ms=5.0,
            priority=2,
        ),
        Workload(
            name="vision-batch",
            gpus=1,
            memory_gib=30.0,
            priority=1,
            current=(CurrentReplica("dc-a-r1-n01", (0,)),),
        ),
    )
    return Problem(fleet=fleet, workloads=workloads, options=SolveOptions(time_limit_s=30.0))


# ----------------------------------------------------------------------------- mixed


def _rack(site: str, number: int, usable_kw: float, redundancy: Redundancy, modules: int = 2) -> PowerDomain:
    factor = {Redundancy.N: 1.0, Redundancy.TWO_N: 0.5}.get(redundancy, (modules - 1) / modules)
    return PowerDomain(
        name=f"{site}-r{number:02d}",
        site=site,
        capacity_kw=round(usable_kw / factor, 1),
        redundancy=redundancy,
        modules=modules,
    )


def mixed_problem() -> Problem:
    """A realistic mixed fleet; see ``datasets/mixed/README.md``."""
    H100, H200, GB200, MI300X, L4, L40S = (
        catalog.H100,
        catalog.H200,
        catalog.GB200,
        catalog.MI300X,
        catalog.L4,
        catalog.L40S,
    )
    sites: list[Site] = []
    racks: list[PowerDomain] = []
    nodes: list[Node] = []

    def dc(
        name: str,
        region: str,
        usable_kw: float,
        redundancy: Redundancy,
        modules: int,
        pue: float,
        price: float,
        carbon: float,
    ) -> None:
        factor = {Redundancy.N: 1.0, Redundancy.TWO_N: 0.5}.get(redundancy, (modules - 1) / modules)
        sites.append(
            Site(
                name=name,
                kind=SiteKind.DATACENTER,
                region=region,
                capacity_kw=round(usable_kw / factor, 1),
                pue=pue,
                redundancy=redundancy,
                modules=modules,
                battery_minutes=12.0,
                has_generator=True,
                energy_price_per_kwh=price,
                carbon_g_per_kwh=carbon,
            )
        )

    def edge(name: str, region: str, usable_kw: float, battery: float, price: float, carbon: float) -> None:
        sites.append(
            Site(
                name=name,
                kind=SiteKind.EDGE,
                region=region,
                capacity_kw=usable_kw,
                pue=1.45,
                redundancy=Redundancy.N,
                battery_minutes=battery,
                has_generator=False,
                energy_price_per_kwh=price,
                carbon_g_per_kwh=carbon,
            )
        )

    def fill(site: str, rack: PowerDomain, gpu_type: str, count: int, per_node: int) -> None:
        racks.append(rack)
        for i in range(count):
            nodes.append(_node(site, rack.name, i + 1, gpu_type, per_node))

    # iad1, us-east: 2N; two H100 racks (r01 capped at 34 kW of its 40.8 kW nameplate) and one
    # liquid-cooled GB200 NVL72 rack (18 trays of 4) capped at 100 kW of ~120 kW.
    dc("iad1", "us-east", 260.0, Redundancy.TWO_N, 2, 1.25, 0.085, 380.0)
    fill("iad1", _rack("iad1", 1, 34.0, Redundancy.TWO_N), H100, 4, 8)
    fill("iad1", _rack("iad1", 2, 42.0, Redundancy.TWO_N), H100, 4, 8)
    fill("iad1", _rack("iad1", 3, 100.0, Redundancy.TWO_N), GB200, 18, 4)
    # pdx1, us-west: N+1 with 4 modules; two H200 racks and an L40S rack, the site capped at
    # 52 kW of its 68.7 kW nameplate (the binding site).
    dc("pdx1", "us-west", 52.0, Redundancy.N_PLUS_1, 4, 1.15, 0.065, 90.0)
    fill("pdx1", _rack("pdx1", 1, 31.0, Redundancy.TWO_N), H200, 3, 8)
    fill("pdx1", _rack("pdx1", 2, 31.0, Redundancy.TWO_N), H200, 3, 8)
    fill("pdx1", _rack("pdx1", 3, 8.0, Redundancy.N), L40S, 4, 4)
    # fra1, eu-west: 2N; an MI300X rack (capped at 30 kW of 40.8) and an H100 rack.
    dc("fra1", "eu-west", 90.0, Redundancy.TWO_N, 2, 1.3, 0.21, 320.0)
    fill("fra1", _rack("fra1", 1, 30.0, Redundancy.TWO_N), MI300X, 4, 8)
    fill("fra1", _rack("fra1", 2, 42.0, Redundancy.TWO_N), H100, 4, 8)
    # nrt1, ap-northeast: N+1 with 3 modules; one H200 rack of four nodes.
    dc("nrt1", "ap-northeast", 45.0, Redundancy.N_PLUS_1, 3, 1.4, 0.17, 470.0)
    fill("nrt1", _rack("nrt1", 1, 42.0, Redundancy.TWO_N), H200, 4, 8)
    # edge sites: L4 (and one L40S node in London), single feed, minutes of battery.
    edge("nyc-edge", "us-east", 4.0, 5.0, 0.14, 380.0)
    fill("nyc-edge", _rack("nyc-edge", 1, 4.0, Redundancy.N), L4, 4, 2)
    edge("chi-edge", "us-east", 2.0, 5.0, 0.12, 420.0)
    fill("chi-edge", _rack("chi-edge", 1, 2.0, Redundancy.N), L4, 2, 2)
    edge("sfo-edge", "us-west", 2.5, 8.0, 0.18, 210.0)
    fill("sfo-edge", _rack("sfo-edge", 1, 2.5, Redundancy.N), L4, 3, 2)
    edge("lon-edge", "eu-west", 2.4, 5.0, 0.24, 230.0)
    fill("lon-edge", _rack("lon-edge", 1, 2.4, Redundancy.N), L4, 2, 4)
    nodes.append(_node("lon-edge", "lon-edge-r01", 3, L40S, 2))
    edge("tyo-edge", "ap-northeast", 1.5, 3.0, 0.2, 480.0)
    fill("tyo-edge", _rack("tyo-edge", 1, 1.5, Redundancy.N), L4, 2, 2)

    # one node draining (maintenance) and one down
    nodes = [
        Node(**{**n.__dict__, "state": NodeState.DRAINING})
        if n.name == "pdx1-r02-n03"
        else Node(**{**n.__dict__, "state": NodeState.DOWN})
        if n.name == "nyc-edge-r01-n04"
        else n
        for n in nodes
    ]

    regions = ("us-east", "us-west", "eu-west", "ap-northeast")
    links = (
        Link("us-east", "iad1", 3.0),
        Link("us-east", "nyc-edge", 1.0),
        Link("us-east", "chi-edge", 9.0),
        Link("us-west", "pdx1", 4.0),
        Link("us-west", "sfo-edge", 1.0),
        Link("eu-west", "fra1", 4.0),
        Link("eu-west", "lon-edge", 1.0),
        Link("ap-northeast", "nrt1", 3.0),
        Link("ap-northeast", "tyo-edge", 1.0),
        Link("us-east", "us-west", 32.0),
        Link("us-east", "eu-west", 38.0),
        Link("us-west", "ap-northeast", 55.0),
        Link("eu-west", "ap-northeast", 110.0),
    )
    fleet = Fleet(
        gpu_types=_types(H100, H200, GB200, MI300X, L40S, L4),
        sites=tuple(sites),
        power_domains=tuple(racks),
        nodes=tuple(nodes),
        regions=regions,
        links=links,
    )

    big = (H100, H200, GB200, MI300X)
    edge_types = (L4, L40S)

    def w(name: str, **kw: object) -> Workload:
        return Workload(name=name, **kw)  # type: ignore[arg-type]

    site_spread = Spread(SpreadLevel.SITE, 2)
    workloads = (
        # large language models: multi-GPU replicas, spread and site-loss survival
        w(
            "llama-3-70b-chat",
            gpus=4,
            memory_gib=150.0,
            allowed_gpu_types=big,
            min_replicas=4,
            max_replicas=8,
            spread=site_spread,
            survive_site_loss_pct=50,
            user_region="us-east",
            max_latency_ms=45.0,
            priority=5,
            current=(
                CurrentReplica("iad1-r01-n01", (0, 1, 2, 3)),
                CurrentReplica("iad1-r01-n02", (0, 1, 2, 3)),
                CurrentReplica("pdx1-r01-n01", (0, 1, 2, 3)),
                CurrentReplica("pdx1-r02-n03", (0, 1, 2, 3)),
            ),
        ),
        w(
            "llama-3-70b-chat-eu",
            gpus=2,
            memory_gib=150.0,
            allowed_gpu_types=big,
            min_replicas=2,
            max_replicas=4,
            spread=Spread(SpreadLevel.NODE, 2),
            user_region="eu-west",
            max_latency_ms=10.0,
            priority=5,
            current=(CurrentReplica("fra1-r02-n01", (0, 1)), CurrentReplica("fra1-r02-n02", (0, 1))),
        ),
        w(
            "llama-3-405b",
            gpus=8,
            memory_gib=900.0,
            min_replicas=1,
            max_replicas=3,
            priority=4,
            min_power_cap_pct=80,
            backup_minutes=15.0,
        ),
        w("deepseek-v3", gpus=8, memory_gib=1200.0, min_replicas=1, max_replicas=2, priority=3),
        w(
            "mixtral-8x22b",
            gpus=4,
            memory_gib=300.0,
            min_replicas=2,
            max_replicas=4,
            spread=Spread(SpreadLevel.POWER_DOMAIN, 2),
            priority=3,
        ),
        w("qwen-2.5-72b", gpus=2, memory_gib=150.0, min_replicas=2, max_replicas=6, priority=2),
        w(
            "llama-3-70b-batch",
            gpus=4,
            memory_gib=280.0,
            allowed_gpu_types=big,
            min_replicas=1,
            max_replicas=8,
            priority=1,
        ),
        w(
            "codestral-completion",
            gpus=1,
            memory_gib=45.0,
            min_replicas=4,
            max_replicas=12,
            user_region="us-west",
            max_latency_ms=10.0,
            priority=4,
            min_power_cap_pct=100,
        ),
        # single-GPU services
        w(
            "llama-3-8b-chat",
            gpus=1,
            memory_gib=20.0,
            min_replicas=4,
            max_replicas=16,
            spread=Spread(SpreadLevel.SITE, 3),
            survive_site_loss_pct=50,
            priority=3,
        ),
        w(
            "whisper-large",
            gpus=1,
            memory_gib=12.0,
            allowed_gpu_types=edge_types,
            min_replicas=2,
            max_replicas=8,
            spread=site_spread,
            priority=2,
        ),
        w("sdxl-image", gpus=1, memory_gib=40.0, min_replicas=2, max_replicas=16, priority=1),
        w("recsys-ranking", gpus=1, memory_gib=60.0, min_replicas=4, max_replicas=20, priority=2),
        w("vision-encoder", gpus=1, memory_gib=24.0, min_replicas=2, max_replicas=8, priority=2),
        w(
            "search-summarize",
            gpus=1,
            memory_gib=70.0,
            allowed_gpu_types=(H100, H200),
            min_replicas=2,
            max_replicas=8,
            spread=site_spread,
            survive_site_loss_pct=50,
            priority=3,
        ),
        w("video-understanding", gpus=2, memory_gib=120.0, min_replicas=1, max_replicas=4, priority=2),
        w(
            "tts-realtime",
            gpus=1,
            memory_gib=8.0,
            allowed_gpu_types=(L4,),
            min_replicas=2,
            max_replicas=6,
            spread=Spread(SpreadLevel.NODE, 2),
            priority=3,
        ),
        # fractional (shared-GPU) services
        w(
            "embedding",
            gpus=0,
            gpu_milli=250,
            memory_gib=6.0,
            min_replicas=8,
            max_replicas=24,
            spread=site_spread,
            survive_site_loss_pct=50,
            priority=3,
        ),
        w("reranker", gpus=0, gpu_milli=500, memory_gib=10.0, min_replicas=4, max_replicas=12, priority=3),
        w(
            "fraud-scoring",
            gpus=0,
            gpu_milli=250,
            memory_gib=4.0,
            min_replicas=4,
            max_replicas=8,
            spread=Spread(SpreadLevel.NODE, 2),
            user_region="us-east",
            max_latency_ms=10.0,
            backup_minutes=10.0,
            priority=5,
        ),
        w(
            "content-moderation",
            gpus=0,
            gpu_milli=200,
            memory_gib=8.0,
            min_replicas=2,
            max_replicas=10,
            priority=2,
        ),
        w(
            "ocr-documents",
            gpus=0,
            gpu_milli=500,
            memory_gib=12.0,
            min_replicas=2,
            max_replicas=8,
            priority=1,
        ),
        w("sentiment", gpus=0, gpu_milli=100, memory_gib=3.0, min_replicas=2, max_replicas=10, priority=1),
        w(
            "speech-to-text-small",
            gpus=0,
            gpu_milli=250,
            memory_gib=4.0,
            allowed_gpu_types=edge_types,
            min_replicas=4,
            max_replicas=12,
            spread=site_spread,
            priority=2,
        ),
        # edge services: latency-bound to a region, short on backup
        *(
            w(
                f"asr-edge-{region}",
                gpus=0,
                gpu_milli=500,
                memory_gib=8.0,
                allowed_gpu_types=(L4,),
                min_replicas=2,
                max_replicas=4,
                user_region=region,
                max_latency_ms=2.0,
                priority=4,
            )
            for region in regions
        ),
        *(
            w(
                f"personalization-{region}",
                gpus=1,
                memory_gib=16.0,
                min_replicas=1,
                max_replicas=3,
                user_region=region,
                max_latency_ms=5.0,
                priority=3,
            )
            for region in regions
        ),
        w(
            "ar-glasses-vision",
            gpus=1,
            memory_gib=20.0,
            allowed_gpu_types=(L4, L40S),
            min_replicas=2,
            max_replicas=4,
            user_region="eu-west",
            max_latency_ms=2.0,
            priority=4,
        ),
        w(
            "payments-guard",
            gpus=0,
            gpu_milli=500,
            memory_gib=10.0,
            min_replicas=2,
            max_replicas=4,
            spread=site_spread,
            survive_site_loss_pct=100,
            backup_minutes=30.0,
            priority=5,
        ),
        w("nightly-eval", gpus=8, memory_gib=500.0, min_replicas=1, max_replicas=4, priority=1),
    )
    return Problem(fleet=fleet, workloads=workloads, options=SolveOptions(time_limit_s=30.0))


# ------------------------------------------------------------------------ infeasible


def infeasible_problem() -> Problem:
    """One workload per reason a workload cannot be placed; see ``datasets/infeasible/README.md``."""
    H100, H200, A100, L4, L40S, B200 = (
        catalog.H100,
        catalog.H200,
        catalog.A100,
        catalog.L4,
        catalog.L40S,
        catalog.B200,
    )
    fleet = Fleet(
        gpu_types=_types(H100, H200, A100, L40S, L4, B200),
        sites=(
            Site(
                name="dc-main",
                kind=SiteKind.DATACENTER,
                region="us-east",
                capacity_kw=200.0,
                pue=1.3,
                redundancy=Redundancy.TWO_N,
                battery_minutes=10.0,
                has_generator=True,
                energy_price_per_kwh=0.1,
                carbon_g_per_kwh=400.0,
            ),
            Site(
                name="edge-east",
                kind=SiteKind.EDGE,
                region="us-east",
                capacity_kw=2.0,
                pue=1.5,
                battery_minutes=5.0,
                energy_price_per_kwh=0.15,
                carbon_g_per_kwh=400.0,
            ),
            Site(
                name="edge-west",
                kind=SiteKind.EDGE,
                region="us-west",
                capacity_kw=2.0,
                pue=1.5,
                battery_minutes=5.0,
                energy_price_per_kwh=0.15,
                carbon_g_per_kwh=250.0,
            ),
        ),
        power_domains=(
            PowerDomain(name="dc-main-r01", site="dc-main", capacity_kw=24.0, redundancy=Redundancy.TWO_N),
            # 3 kW cannot even power the H200 node's host (4,600 W)
            PowerDomain(name="dc-main-r02", site="dc-main", capacity_kw=3.0),
            PowerDomain(name="dc-main-r03", site="dc-main", capacity_kw=10.0),
            PowerDomain(name="dc-main-r04", site="dc-main", capacity_kw=2.0),
            PowerDomain(name="edge-east-r01", site="edge-east", capacity_kw=1.0),
            PowerDomain(name="edge-west-r01", site="edge-west", capacity_kw=1.0),
        ),
        nodes=(
            _node("dc-main", "dc-main-r01", 1, H100, 8),
            _node("dc-main", "dc-main-r02", 1, H200, 8),
            _node("dc-main", "dc-main-r03", 1, A100, 8, NodeState.DRAINING),
            _node("dc-main", "dc-main-r03", 2, A100, 4, NodeState.DOWN),
            _node("dc-main", "dc-main-r04", 1, L40S, 2),
            _node("edge-east", "edge-east-r01", 1, L4, 2),
            _node("edge-west", "edge-west-r01", 1, L4, 2),
        ),
        regions=("us-east", "us-west", "antarctica"),
        links=(
            Link("us-east", "dc-main", 3.0),
            Link("us-east", "edge-east", 1.0),
            Link("us-west", "edge-west", 1.0),
            Link("us-east", "us-west", 32.0),
            Link("antarctica", "edge-west", 150.0),
        ),
    )
    workloads = (
        Workload(name="healthy-chat", gpus=2, memory_gib=100.0, min_replicas=1, max_replicas=2, priority=3),
        Workload(name="huge-memory-model", gpus=1, memory_gib=300.0, priority=3),
        Workload(
            name="far-from-users", gpus=1, memory_gib=10.0, user_region="antarctica", max_latency_ms=20.0
        ),
        Workload(
            name="needs-long-backup", gpus=1, memory_gib=10.0, allowed_gpu_types=(L4,), backup_minutes=30.0
        ),
        Workload(name="wants-absent-b200", gpus=1, memory_gib=10.0, allowed_gpu_types=(B200,)),
        Workload(name="a100-only-draining", gpus=1, memory_gib=10.0, allowed_gpu_types=(A100,)),
        Workload(name="h200-power-starved", gpus=1, memory_gib=10.0, allowed_gpu_types=(H200,)),
        Workload(
            name="spread-over-five-sites",
            gpus=1,
            memory_gib=10.0,
            min_replicas=5,
            max_replicas=5,
            spread=Spread(SpreadLevel.SITE, 5),
        ),
        Workload(
            name="survive-site-loss-one-site",
            gpus=1,
            memory_gib=60.0,
            allowed_gpu_types=(H100,),
            min_replicas=2,
            max_replicas=2,
            survive_site_loss_pct=50,
        ),
        Workload(
            name="l40s-premium",
            gpus=2,
            memory_gib=60.0,
            allowed_gpu_types=(L40S,),
            priority=5,
        ),
        Workload(
            name="l40s-outcompeted",
            gpus=2,
            memory_gib=60.0,
            allowed_gpu_types=(L40S,),
            priority=1,
        ),
    )
    return Problem(fleet=fleet, workloads=workloads, options=SolveOptions(time_limit_s=30.0))


# ------------------------------------------------------------------------------ write

BUILDERS: dict[str, Callable[[], Problem]] = {
    "tiny": tiny_problem,
    "mixed": mixed_problem,
    "infeasible": infeasible_problem,
}


def catalog_message() -> Message:
    """The catalog as a ``Fleet`` message holding only ``gpu_types``."""
    from wire.convert import request_from_problem

    empty = Fleet(gpu_types=catalog.CATALOG, sites=(), power_domains=(), nodes=())
    fleet_msg: Message = request_from_problem(Problem(fleet=empty, workloads=())).fleet
    return fleet_msg


def messages() -> dict[str, Message]:
    """Every bundled JSON file: path relative to ``datasets/`` -> the message it holds."""
    from wire.convert import request_from_problem

    out: dict[str, Message] = {"catalog.json": catalog_message()}
    for name, build in BUILDERS.items():
        out[f"{name}/{PROBLEM_FILE}"] = request_from_problem(build())
    return out


def write_all(out_dir: Path = DATASETS_DIR) -> list[Path]:
    """Write every bundled JSON file under ``out_dir`` (atomically, one by one)."""
    from wire.files import write_json_atomic

    written: list[Path] = []
    for rel, msg in messages().items():
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, msg)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fleetplace.datasets", description="Rewrite the bundled datasets."
    )
    parser.add_argument("--out", type=Path, default=DATASETS_DIR, help="output folder (default: datasets/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in write_all(args.out):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
