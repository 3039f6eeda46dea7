"""Seeded random fleets and workloads of any size, for tests and benchmarks.

``generate(size_gpus, seed, **knobs)`` returns a ``Problem`` with exactly ``size_gpus``
GPUs. The same arguments always give the same problem (one ``random.Random(seed)`` drives
every choice; nothing depends on hash order or the clock).

What a generated fleet looks like
---------------------------------
* User regions (1 to 8, from a fixed list with planar coordinates) joined by a full mesh
  of links whose latency grows with distance; every site links to its own region
  (data centres 2-5 ms, edge sites 1-3 ms), so other regions are reached over the
  backbone.
* Data centres (about ``sqrt(size / 40)``, at most 48) and edge sites (about
  ``sqrt(size / 100)``, at most 40; none below 16 GPUs). Edge sites hold
  ``edge_share`` of the GPUs.
* Each data centre hosts 1-3 GPU types from the catalog (H100, H200, B200, GB200, MI300X,
  MI325X, A100, L40S); each edge site L4 and L40S. Power domains are racks of one type:
  about 40 kW of nameplate in a data centre, one 18-tray NVL72 rack for GB200, 10-15 kW
  at the edge. Nodes hold 1, 2, 4 or 8 GPUs (8 and 4 most often in data centres, GB200
  compute trays 4, edge nodes 1-4).
* Host power per node from ``catalog.host_power_w`` (DGX system figures of
  ``gpu-catalog/node_power_sourced.csv``: 3,300 W for DGX A100, 4,600 W for DGX H100/H200,
  6,300 W for DGX B200, ~467 W per GB200 GPU).
* Caps bind: a node's nameplate is ``host + gpus * max board power``. About half of the
  racks get a usable cap of 60-80% of the nameplate of their nodes (never below what their
  largest node needs at its lowest cap), the rest 100-115%; a third of the sites get 65-80%
  of their nameplate, the rest 95-110%. ``capacity_kw`` is derived from the usable watts
  through the redundancy factor and rounded up to 0.1 kW.
* Redundancy: the larger half of the data centres 2N, the others N+1 with 4 modules; racks
  in data centres 2N or N; edge sites and racks N. PUE 1.1-1.4 in data centres, 1.3-1.6
  at the edge. Data centres have a generator and 10-15 battery minutes; edge sites 2-10
  minutes (a fifth of them 30) and no generator. Energy price and carbon intensity per
  region with a little noise per site.
* About 2% of the nodes DRAINING and 1% DOWN (not below 50 nodes).
* Workloads: named like services, whole-GPU (1 GPU, and 2/4/8-GPU replicas for big
  models) and fractional (100-500 milli). ``demand_ratio`` sets the GPU work requested at
  ``max_replicas`` against the fleet's GPUs; ``fractional_share`` and ``multi_gpu_share``
  split that work. Memory per GPU is 40-95% of a present type's memory; allowed types are
  empty (any that fits) or the present types that fit. Min/max replica ranges, spread
  (site, power domain or node), site-loss survival, latency rules, backup minutes,
  priorities 1-5, minimum power caps, and, for ``current_share`` of the workloads, a
  current placement (first fit on READY or DRAINING nodes, GPU indices disjoint).
* Blast radius, off by default: with ``blast_radius_share`` > 0 that share of the workloads
  gets a per-node cap (``max_per_node``) of 2, 4, 8, 10 or 16 (``PER_NODE_CAPS``), drawn from
  a random stream of its own, so the rest of the problem is the one the same seed gives
  without caps (held benchmark figures and golden tests keep their problems byte for byte).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, fields, replace

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
    Spread,
    SpreadLevel,
    Workload,
    usable_factor,
)

log = logging.getLogger(__name__)

# (name, x, y, energy price $/kWh, carbon g/kWh); coordinates in ms of one-way latency.
REGIONS: tuple[tuple[str, float, float, float, float], ...] = (
    ("us-east", 0.0, 0.0, 0.09, 380.0),
    ("eu-west", 38.0, 6.0, 0.16, 250.0),
    ("us-west", -32.0, 4.0, 0.12, 220.0),
    ("ap-northeast", -75.0, 30.0, 0.14, 460.0),
    ("eu-north", 42.0, -8.0, 0.07, 40.0),
    ("ap-south", 95.0, 40.0, 0.10, 650.0),
    ("sa-east", 20.0, 60.0, 0.11, 110.0),
    ("ap-southeast", -110.0, 55.0, 0.13, 500.0),
)

DC_TYPE_WEIGHTS: tuple[tuple[str, float], ...] = (
    (catalog.H100, 0.24),
    (catalog.H200, 0.18),
    (catalog.B200, 0.12),
    (catalog.GB200, 0.08),
    (catalog.MI300X, 0.12),
    (catalog.MI325X, 0.05),
    (catalog.A100, 0.15),
    (catalog.L40S, 0.06),
)
EDGE_TYPE_WEIGHTS: tuple[tuple[str, float], ...] = ((catalog.L4, 0.7), (catalog.L40S, 0.3))

# (archetype name, gpus per replica options); fractional archetypes have gpus 0.
FRACTIONAL_SERVICES = ("embedding", "reranker", "fraud-scoring", "ocr", "moderation", "tts", "asr-small")
SINGLE_SERVICES = ("llama-3-8b-chat", "whisper", "sdxl", "mistral-7b", "code-completion", "vision-encoder")
MULTI_SERVICES = ("llama-3-70b-chat", "mixtral-8x22b", "qwen-72b", "llama-3-405b", "deepseek-v3")


# Per-node instance caps of the blast radius. The values are those issue 15 (item 4) quotes for the
# production inference trace of Alibaba, which caps instances per node for 99% of its services at 2,
# 4, 8, 10 or 16. The trace we hold, Alibaba cluster-trace-gpu-v2023 / "Beware of Fragmentation"
# (ATC'23) in /work/shared/datasets, has no per-node caps (its README says nothing of them), so the
# issue's statement is the source; the share of capped workloads is a knob, not a measured figure.
PER_NODE_CAPS = (2, 4, 8, 10, 16)


@dataclass(frozen=True)
class Knobs:
    """Generator settings (``generate(..., **knobs)``)."""

    demand_ratio: float = 1.0  # GPU work requested at max_replicas / GPUs in the fleet
    fractional_share: float = 0.2  # share of the demand from fractional (milli-GPU) workloads
    multi_gpu_share: float = 0.4  # share of the demand from 2/4/8-GPU replicas
    edge_share: float = 0.12  # share of the GPUs at edge sites
    current_share: float = 0.3  # share of workloads given a current placement
    latency_share: float = 0.4  # share of workloads with a latency rule
    spread_share: float = 0.4  # share of multi-replica workloads with a spread rule
    survive_share: float = 0.2  # share of multi-replica workloads that must survive a site loss
    backup_share: float = 0.15  # share of workloads that need backup minutes
    binding_rack_share: float = 0.5  # share of racks capped at 60-80% of their nameplate
    binding_site_share: float = 0.34  # share of sites capped at 65-80% of their nameplate
    dc_eight_gpu_node_share: float = 0.7  # share of 8-GPU nodes in data-centre racks (the rest 4/2/1)
    eight_gpu_replica_share: float = 0.0  # multi-GPU replicas forced to 8 GPUs (0: 2, 4 or 8 evenly)
    replicas_scale: float = 1.0  # multiplies each workload's min and max replicas
    gb200_weight: float = 0.08  # weight of GB200 (4-GPU compute trays) among data-centre GPU types
    blast_radius_share: float = 0.0  # share of workloads given a max_per_node from PER_NODE_CAPS (0: none)


def _knobs(values: dict[str, float]) -> Knobs:
    names = {f.name for f in fields(Knobs)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"unknown generator knobs: {', '.join(unknown)}")
    k = Knobs(**values)  # type: ignore[arg-type]
    if k.fractional_share + k.multi_gpu_share > 1.0 + 1e-9:
        raise ValueError("fractional_share + multi_gpu_share must be at most 1")
    if k.demand_ratio < 0:
        raise ValueError("demand_ratio must be >= 0")
    if not 0.0 <= k.dc_eight_gpu_node_share <= 1.0 or not 0.0 <= k.eight_gpu_replica_share <= 1.0:
        raise ValueError("dc_eight_gpu_node_share and eight_gpu_replica_share must be in [0, 1]")
    if k.gb200_weight < 0:
        raise ValueError("gb200_weight must be >= 0")
    if k.replicas_scale <= 0:
        raise ValueError("replicas_scale must be > 0")
    if not 0.0 <= k.blast_radius_share <= 1.0:
        raise ValueError("blast_radius_share must be in [0, 1]")
    return k


def _weighted(rng: random.Random, items: tuple[tuple[str, float], ...] | list[tuple[str, float]]) -> str:
    total = sum(w for _, w in items)
    x = rng.random() * total
    for name, w in items:
        x -= w
        if x < 0:
            return name
    return items[-1][0]


@dataclass
class _SitePlan:
    name: str
    kind: SiteKind
    region: str
    gpus: int


def _site_plans(size_gpus: int, rng: random.Random, k: Knobs) -> tuple[list[str], list[_SitePlan]]:
    n_regions = max(1, min(len(REGIONS), 1 + int(1.2 * math.log10(max(1, size_gpus)))))
    regions = [r[0] for r in REGIONS[:n_regions]]
    n_dc = max(1, min(48, math.ceil(math.sqrt(size_gpus / 40))))
    n_edge = 0 if size_gpus < 16 else max(1, min(40, math.ceil(math.sqrt(size_gpus / 100))))
    edge_gpus = 0 if n_edge == 0 else max(n_edge, round(size_gpus * k.edge_share))
    dc_gpus = size_gpus - edge_gpus
    n_dc = min(n_dc, dc_gpus)

    plans: list[_SitePlan] = []

    def split(total: int, n: int) -> list[int]:
        weights = [rng.uniform(0.5, 1.5) for _ in range(n)]
        s = sum(weights)
        parts = [max(1, int(total * w / s)) for w in weights]
        diff = total - sum(parts)
        i = 0
        while diff != 0:
            j = i % n
            if diff > 0:
                parts[j] += 1
                diff -= 1
            elif parts[j] > 1:
                parts[j] -= 1
                diff += 1
            i += 1
        return parts

    per_region: dict[str, int] = {}
    for i, g in enumerate(split(dc_gpus, n_dc)):
        region = regions[i % n_regions]
        per_region[region] = per_region.get(region, 0) + 1
        plans.append(_SitePlan(f"dc-{region}-{per_region[region]}", SiteKind.DATACENTER, region, g))
    edge_count: dict[str, int] = {}
    if n_edge:
        for i, g in enumerate(split(edge_gpus, n_edge)):
            region = regions[(i + 1) % n_regions]
            edge_count[region] = edge_count.get(region, 0) + 1
            plans.append(_SitePlan(f"edge-{region}-{edge_count[region]}", SiteKind.EDGE, region, g))
    return regions, plans


_DEFAULT_EIGHT_SHARE = 0.7


def _node_sizes(
    gpu_type: str, kind: SiteKind, eight_share: float = _DEFAULT_EIGHT_SHARE
) -> tuple[tuple[int, float], ...]:
    if kind is SiteKind.EDGE:
        return ((1, 0.35), (2, 0.4), (4, 0.25))
    if gpu_type == catalog.GB200:
        return ((4, 1.0),)
    if gpu_type in (catalog.L40S,):
        if eight_share == _DEFAULT_EIGHT_SHARE:
            return ((2, 0.3), (4, 0.4), (8, 0.3))
        return ((2, 0.3 * (1.0 - eight_share)), (4, 0.7 * (1.0 - eight_share)), (8, eight_share))
    if eight_share == _DEFAULT_EIGHT_SHARE:
        return ((8, 0.7), (4, 0.15), (2, 0.1), (1, 0.05))
    rest = (1.0 - eight_share) / (1.0 - _DEFAULT_EIGHT_SHARE)
    return ((8, eight_share), (4, 0.15 * rest), (2, 0.1 * rest), (1, 0.05 * rest))


def _rack_nameplate_target_w(gpu_type: str, kind: SiteKind, rng: random.Random) -> float:
    if kind is SiteKind.EDGE:
        return rng.uniform(10_000, 15_000)
    if gpu_type == catalog.GB200:
        return 18 * (catalog.host_power_w(gpu_type, 4) + 4 * catalog.gpu_type(gpu_type).max_power_w)
    return rng.uniform(35_000, 45_000)


def _nameplate_w(node: Node, gpu: GpuType) -> int:
    return node.host_power_w + node.gpu_count * gpu.max_power_w


def _round_capacity_kw(usable_w: float, redundancy: Redundancy, modules: int) -> float:
    """Installed kW in 0.1 kW steps, rounded up, so that the usable watts are at least ``usable_w``."""
    factor = usable_factor(redundancy, modules)
    return max(0.1, math.ceil(usable_w / factor / 100.0 - 1e-9) / 10.0)


def _build_fleet(size_gpus: int, rng: random.Random, k: Knobs) -> Fleet:
    regions, plans = _site_plans(size_gpus, rng, k)
    region_info = {r[0]: r for r in REGIONS}
    dc_sizes = sorted(p.gpus for p in plans if p.kind is SiteKind.DATACENTER)
    median_dc = dc_sizes[len(dc_sizes) // 2] if dc_sizes else 0

    dc_weights = DC_TYPE_WEIGHTS
    if k.gb200_weight != dict(DC_TYPE_WEIGHTS)[catalog.GB200]:
        dc_weights = tuple((t, k.gb200_weight if t == catalog.GB200 else w) for t, w in DC_TYPE_WEIGHTS)
    sites: list[Site] = []
    domains: list[PowerDomain] = []
    nodes: list[Node] = []
    links: list[Link] = []
    for plan in plans:
        is_dc = plan.kind is SiteKind.DATACENTER
        weights = dc_weights if is_dc else EDGE_TYPE_WEIGHTS
        n_types = min(len(weights), rng.choice((1, 2, 2, 3)) if is_dc else rng.choice((1, 2)))
        site_types: list[str] = []
        while len(site_types) < n_types:
            t = _weighted(rng, [w for w in weights if w[0] not in site_types])
            site_types.append(t)
        site_nodes: list[Node] = []
        site_domains: list[PowerDomain] = []
        remaining = plan.gpus
        rack_no = 0
        while remaining > 0:
            gpu_name = site_types[rack_no % len(site_types)]
            gpu = catalog.gpu_type(gpu_name)
            rack_no += 1
            rack_name = f"{plan.name}-r{rack_no:03d}"
            target_w = _rack_nameplate_target_w(gpu_name, plan.kind, rng)
            rack_nodes: list[Node] = []
            rack_w = 0
            while remaining > 0 and (not rack_nodes or rack_w < target_w * 0.95):
                options = [
                    (c, w)
                    for c, w in _node_sizes(gpu_name, plan.kind, k.dc_eight_gpu_node_share)
                    if c <= remaining and w > 0
                ]
                count = int(_weighted(rng, [(str(c), w) for c, w in options])) if options else remaining
                node = Node(
                    name=f"{rack_name}-n{len(rack_nodes) + 1:02d}",
                    site=plan.name,
                    power_domain=rack_name,
                    gpu_type=gpu_name,
                    gpu_count=count,
                    host_power_w=catalog.host_power_w(gpu_name, count),
                )
                np_w = _nameplate_w(node, gpu)
                if rack_nodes and rack_w + np_w > target_w * 1.1:
                    break
                rack_nodes.append(node)
                rack_w += np_w
                remaining -= count
            if is_dc and rng.random() < 0.6:
                redundancy, modules = Redundancy.TWO_N, 2
            else:
                redundancy, modules = Redundancy.N, 2
            f = rng.uniform(0.6, 0.8) if rng.random() < k.binding_rack_share else rng.uniform(1.0, 1.15)
            # never below what the largest node needs at its lowest cap, so every rack is usable
            floor_w = max(
                n.host_power_w + n.gpu_count * catalog.gpu_type(n.gpu_type).power_levels[0].power_cap_w
                for n in rack_nodes
            )
            usable = max(rack_w * f, floor_w * 1.02)
            site_domains.append(
                PowerDomain(
                    name=rack_name,
                    site=plan.name,
                    capacity_kw=_round_capacity_kw(usable, redundancy, modules),
                    redundancy=redundancy,
                    modules=modules,
                )
            )
            site_nodes.extend(rack_nodes)

        site_nameplate = sum(_nameplate_w(n, catalog.gpu_type(n.gpu_type)) for n in site_nodes)
        if is_dc:
            redundancy, modules = (
                (Redundancy.TWO_N, 2) if plan.gpus >= median_dc else (Redundancy.N_PLUS_1, 4)
            )
        else:
            redundancy, modules = Redundancy.N, 2
        f = rng.uniform(0.65, 0.8) if rng.random() < k.binding_site_share else rng.uniform(0.95, 1.1)
        biggest_rack = max(d.usable_power_w for d in site_domains)
        usable_site = max(site_nameplate * f, min(biggest_rack * 1.02, site_nameplate))
        _, _, _, price, carbon = region_info[plan.region]
        sites.append(
            Site(
                name=plan.name,
                kind=plan.kind,
                region=plan.region,
                capacity_kw=_round_capacity_kw(usable_site, redundancy, modules),
                pue=round(rng.uniform(1.1, 1.4) if is_dc else rng.uniform(1.3, 1.6), 2),
                redundancy=redundancy,
                modules=modules,
                battery_minutes=float(rng.randint(10, 15))
                if is_dc
                else float(30 if rng.random() < 0.2 else rng.randint(2, 10)),
                has_generator=is_dc,
                energy_price_per_kwh=round(price * rng.uniform(0.85, 1.15), 4),
                carbon_g_per_kwh=round(carbon * rng.uniform(0.9, 1.1), 1),
            )
        )
        domains.extend(site_domains)
        nodes.extend(site_nodes)
        links.append(
            Link(plan.name, plan.region, float(rng.randint(2, 5)) if is_dc else float(rng.randint(1, 3)))
        )

    # node states: about 2% draining, 1% down (only in fleets of 50 nodes or more)
    if len(nodes) >= 50:
        out: list[Node] = []
        for n in nodes:
            x = rng.random()
            if x < 0.02:
                n = Node(**{**n.__dict__, "state": NodeState.DRAINING})
            elif x < 0.03:
                n = Node(**{**n.__dict__, "state": NodeState.DOWN})
            out.append(n)
        nodes = out

    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            ra, rb = region_info[a], region_info[b]
            dist = math.hypot(ra[1] - rb[1], ra[2] - rb[2])
            links.append(Link(a, b, round(dist + 2.0, 1)))

    types_used = {n.gpu_type for n in nodes}
    return Fleet(
        gpu_types=tuple(g for g in catalog.CATALOG if g.name in types_used),
        sites=tuple(sites),
        power_domains=tuple(domains),
        nodes=tuple(nodes),
        regions=tuple(regions),
        links=tuple(links),
    )


@dataclass
class _Occupancy:
    """Free GPUs per node for first-fit current placements."""

    whole_free: dict[str, list[int]]
    shared_milli: dict[tuple[str, int], int]
    shared_mem: dict[tuple[str, int], float]
    shared_by_node: dict[str, list[int]]


def _region_latency(fleet: Fleet) -> dict[tuple[str, str], float]:
    region_xy = {r[0]: (r[1], r[2]) for r in REGIONS}
    own = {}
    for link in fleet.links:
        if link.a in {s.name for s in fleet.sites}:
            own[link.a] = (link.b, link.latency_ms)
    table: dict[tuple[str, str], float] = {}
    for region in fleet.regions:
        for site, (home, ms) in own.items():
            if home == region:
                table[(region, site)] = ms
            else:
                a, b = region_xy[region], region_xy[home]
                table[(region, site)] = ms + round(math.hypot(a[0] - b[0], a[1] - b[1]) + 2.0, 1)
    return table


def _build_workloads(fleet: Fleet, rng: random.Random, k: Knobs) -> tuple[Workload, ...]:
    types = {g.name: g for g in fleet.gpu_types}
    ready = [n for n in fleet.nodes if n.state is NodeState.READY]
    total_gpus = sum(n.gpu_count for n in fleet.nodes)
    gpus_by_type: dict[str, int] = {}
    max_count_by_type: dict[str, int] = {}
    for n in ready or fleet.nodes:
        gpus_by_type[n.gpu_type] = gpus_by_type.get(n.gpu_type, 0) + n.gpu_count
        max_count_by_type[n.gpu_type] = max(max_count_by_type.get(n.gpu_type, 0), n.gpu_count)
    latency = _region_latency(fleet)
    site_backup = {s.name: s.backup_minutes for s in fleet.sites}
    node_site = {n.name: n.site for n in fleet.nodes}
    sites_by_type: dict[str, set[str]] = {}
    for n in fleet.nodes:
        sites_by_type.setdefault(n.gpu_type, set()).add(n.site)

    demand_milli = int(k.demand_ratio * total_gpus * 1000)
    budgets = {
        "fractional": int(demand_milli * k.fractional_share),
        "multi": int(demand_milli * k.multi_gpu_share),
    }
    budgets["single"] = demand_milli - budgets["fractional"] - budgets["multi"]
    biggest_node = max((n.gpu_count for n in fleet.nodes), default=1)
    if biggest_node < 2:
        budgets["single"] += budgets["multi"]
        budgets["multi"] = 0
    if not any(g.shareable for g in fleet.gpu_types):
        budgets["single"] += budgets["fractional"]
        budgets["fractional"] = 0

    occ = _Occupancy(
        whole_free={n.name: list(range(n.gpu_count)) for n in fleet.nodes if n.state is not NodeState.DOWN},
        shared_milli={},
        shared_mem={},
        shared_by_node={},
    )
    nodes_by_type: dict[str, list[Node]] = {}
    for n in fleet.nodes:
        if n.state is not NodeState.DOWN:
            nodes_by_type.setdefault(n.gpu_type, []).append(n)

    workloads: list[Workload] = []
    counters: dict[str, int] = {}
    # interleave the three classes so that names and features mix
    order = ["fractional", "single", "multi"]
    while any(budgets[c] > 0 for c in order):
        cls = _weighted(rng, [(c, float(budgets[c])) for c in order if budgets[c] > 0])
        if cls == "fractional":
            service = rng.choice(FRACTIONAL_SERVICES)
            gpus, gpu_milli = 0, rng.choice((100, 125, 200, 250, 300, 400, 500))
            candidates = [t for t in gpus_by_type if types[t].shareable]
        elif cls == "single":
            service = rng.choice(SINGLE_SERVICES)
            gpus, gpu_milli = 1, 0
            candidates = list(gpus_by_type)
        else:
            service = rng.choice(MULTI_SERVICES)
            if (
                k.eight_gpu_replica_share > 0
                and biggest_node >= 8
                and rng.random() < k.eight_gpu_replica_share
            ):
                gpus = 8
            else:
                gpus = rng.choice([g for g in (2, 4, 8) if g <= biggest_node] or [biggest_node])
            gpu_milli = 0
            candidates = [t for t in gpus_by_type if max_count_by_type[t] >= gpus]
            if not candidates:
                gpus = 1
                candidates = list(gpus_by_type)
        if not candidates:
            budgets[cls] = 0
            continue
        target = _weighted(rng, [(t, float(gpus_by_type[t])) for t in sorted(candidates)])
        per_gpu_mem = types[target].memory_gib * rng.uniform(0.4, 0.95)
        if cls == "fractional":
            per_gpu_mem = min(per_gpu_mem, types[target].memory_gib * gpu_milli / 1000.0)
        memory_gib = round(per_gpu_mem * max(gpus, 1), 1)
        work = gpu_milli if gpus == 0 else gpus * 1000
        fitting = sorted(
            t
            for t in candidates
            if types[t].memory_gib + 1e-9 >= memory_gib / max(gpus, 1)
            and (gpus == 0 or max_count_by_type[t] >= gpus)
        )
        allowed: tuple[str, ...] = ()
        if rng.random() < 0.6:
            allowed = tuple(fitting)
        # replicas: more for small services, capped so that one workload stays a small share
        cap = max(1, min(budgets[cls], demand_milli // 10 or work) // work)
        min_r = max(1, min(cap, rng.choice((1, 1, 2, 2, 3, 4)) if gpus >= 4 else rng.randint(1, 6)))
        max_r = max(min_r, min(cap, min_r + rng.randint(0, 2 * min_r)))
        if k.replicas_scale != 1.0:
            min_r = max(1, round(min_r * k.replicas_scale))
            max_r = max(min_r, round(max_r * k.replicas_scale))
        budgets[cls] -= max_r * work
        counters[service] = counters.get(service, 0) + 1
        name = f"{service}-{counters[service]:04d}"

        sites_ok = set().union(*(sites_by_type.get(t, set()) for t in fitting)) if fitting else set()
        spread = None
        survive = 0
        if min_r >= 2 and rng.random() < k.spread_share:
            level = _weighted(rng, [("SITE", 0.5), ("POWER_DOMAIN", 0.3), ("NODE", 0.2)])
            if level == "SITE" and len(sites_ok) >= 2:
                spread = Spread(SpreadLevel.SITE, 2)
            elif level == "POWER_DOMAIN":
                spread = Spread(SpreadLevel.POWER_DOMAIN, 2)
            else:
                spread = Spread(SpreadLevel.NODE, 2)
        if min_r >= 2 and len(sites_ok) >= 2 and rng.random() < k.survive_share:
            survive = 50
        user_region = ""
        max_latency = 0.0
        if fleet.regions and rng.random() < k.latency_share:
            user_region = rng.choice(fleet.regions)
            reach = sorted(latency[(user_region, s)] for s in sites_ok if (user_region, s) in latency)
            if reach:
                # at least the nearest fitting site, often a few more
                idx = min(len(reach) - 1, rng.randint(0, 3))
                max_latency = float(math.ceil(reach[idx] + rng.uniform(0, 5)))
            else:
                user_region = ""
        backup = 0.0
        if rng.random() < k.backup_share:
            backup = float(rng.choice((5, 15, 30)))
        priority = _weighted(rng, [("1", 0.35), ("2", 0.3), ("3", 0.2), ("4", 0.1), ("5", 0.05)])
        min_cap = 0
        x = rng.random()
        if x < 0.1:
            min_cap = 100
        elif x < 0.3:
            min_cap = 80
        current: list[CurrentReplica] = []
        if rng.random() < k.current_share:
            n_cur = rng.randint(1, max_r)
            for n in nodes_by_type.get(target, []):
                if len(current) >= n_cur:
                    break
                if allowed and n.gpu_type not in allowed:
                    continue
                if backup > 0 and site_backup[node_site[n.name]] < backup:
                    continue
                if max_latency > 0 and latency.get((user_region, n.site), math.inf) > max_latency:
                    continue
                free = occ.whole_free[n.name]
                if gpus >= 1:
                    while len(free) >= gpus and len(current) < n_cur:
                        idx_list, occ.whole_free[n.name] = free[:gpus], free[gpus:]
                        free = occ.whole_free[n.name]
                        current.append(CurrentReplica(n.name, tuple(idx_list)))
                else:
                    shared = occ.shared_by_node.setdefault(n.name, [])
                    for i in [*shared, *free[:1]]:
                        key = (n.name, i)
                        if (
                            occ.shared_milli.get(key, 0) + gpu_milli <= 1000
                            and occ.shared_mem.get(key, 0.0) + memory_gib <= types[n.gpu_type].memory_gib
                        ):
                            if key not in occ.shared_milli:
                                occ.whole_free[n.name] = [j for j in free if j != i]
                                free = occ.whole_free[n.name]
                                shared.append(i)
                            occ.shared_milli[key] = occ.shared_milli.get(key, 0) + gpu_milli
                            occ.shared_mem[key] = occ.shared_mem.get(key, 0.0) + memory_gib
                            current.append(CurrentReplica(n.name, (i,)))
                            break
        workloads.append(
            Workload(
                name=name,
                gpus=gpus,
                gpu_milli=gpu_milli,
                memory_gib=memory_gib,
                allowed_gpu_types=allowed,
                min_replicas=min_r,
                max_replicas=max_r,
                spread=spread,
                survive_site_loss_pct=survive,
                backup_minutes=backup,
                user_region=user_region,
                max_latency_ms=max_latency,
                priority=int(priority),
                min_power_cap_pct=min_cap,
                current=tuple(current),
            )
        )
    return tuple(workloads)


def _with_blast_radius(
    workloads: tuple[Workload, ...], rng: random.Random, share: float
) -> tuple[Workload, ...]:
    """``share`` of ``workloads`` (each drawn alike) with a ``max_per_node`` from ``PER_NODE_CAPS``."""
    out = []
    for w in workloads:
        capped = rng.random() < share
        cap = rng.choice(PER_NODE_CAPS)
        out.append(replace(w, max_per_node=cap) if capped else w)
    return tuple(out)


def generate(size_gpus: int, seed: int, **knobs: float) -> Problem:
    """A seeded random problem with exactly ``size_gpus`` GPUs (see the module docstring)."""
    if size_gpus < 1:
        raise ValueError("size_gpus must be >= 1")
    k = _knobs(knobs)
    rng = random.Random(f"fleetplace-generator:{size_gpus}:{seed}")
    fleet = _build_fleet(size_gpus, rng, k)
    workloads = _build_workloads(fleet, rng, k)
    if k.blast_radius_share > 0:  # a stream of its own: the problem without caps is unchanged
        caps_rng = random.Random(f"fleetplace-generator:blast-radius:{size_gpus}:{seed}")
        workloads = _with_blast_radius(workloads, caps_rng, k.blast_radius_share)
    log.debug(
        "generated %d GPUs, %d nodes, %d sites, %d workloads (seed %d)",
        sum(n.gpu_count for n in fleet.nodes),
        len(fleet.nodes),
        len(fleet.sites),
        len(workloads),
        seed,
    )
    return Problem(fleet=fleet, workloads=workloads)


@dataclass(frozen=True)
class Profile:
    """A named benchmark instance family: a fleet size and the generator knobs that shape it."""

    name: str
    size_gpus: int
    knobs: tuple[tuple[str, float], ...]
    about: str


# Large fleets are mostly 8-GPU data-centre nodes with a thin edge, and most of their work
# comes from multi-GPU replicas (8-GPU ones over-represented), so that L has about 5,000
# nodes over about 50 sites and about 10,000 replicas at max_replicas. Power caps bind at
# about half of the racks and a third of the sites (the generator's defaults).
_SCALE_KNOBS: tuple[tuple[str, float], ...] = (
    ("demand_ratio", 1.0),
    ("fractional_share", 0.01),
    ("multi_gpu_share", 0.88),
    ("edge_share", 0.03),
    ("dc_eight_gpu_node_share", 0.95),
    ("eight_gpu_replica_share", 0.7),
    ("gb200_weight", 0.02),
)

PROFILES: dict[str, Profile] = {
    "S": Profile("S", 1_000, _SCALE_KNOBS, "about 1,000 GPUs"),
    "M": Profile("M", 8_000, _SCALE_KNOBS, "about 8,000 GPUs"),
    "L": Profile(
        "L", 40_000, _SCALE_KNOBS, "40,000 GPUs, about 5,000 nodes, about 50 sites, ~10,000 replicas"
    ),
    "XL": Profile("XL", 160_000, _SCALE_KNOBS, "160,000 GPUs"),
}


def profile(name: str, seed: int = 0) -> Problem:
    """The benchmark instance ``name`` (S, M, L or XL) for ``seed``; see ``PROFILES``."""
    try:
        p = PROFILES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; one of {', '.join(PROFILES)}") from None
    return generate(p.size_gpus, seed, **dict(p.knobs))
