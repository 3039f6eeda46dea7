"""Import the Alibaba GPU cluster trace (``cluster-trace-gpu-v2023``) as a placement problem.

The trace (alibaba/clusterdata, used by Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC'23) is public "for
research or study purpose" and stays outside this repository: the default ``trace_dir`` is
``../shared/datasets/alibaba-gpu-trace-2023`` next to the repo, and any folder holding the
same CSV files can be given instead.

Mapping
-------
* Nodes: ``openb_node_list_gpu_node.csv`` (1,213 nodes, 6,212 GPUs). ``model`` is the GPU
  type, ``gpu`` the GPU count, ``cpu_milli`` and ``memory_mib`` the node's host resources.
  All nodes are in one data-centre site; racks of ``RACK_NODES`` (32) nodes in file order.
  Rack and site caps are 125% of the nameplate of their nodes, so power does not bind by
  default (the trace says nothing about power; ``power_headroom`` changes the factor).
* Tasks: ``openb_pod_list_<pod_list>.csv`` rows with ``num_gpu > 0``; one workload per task
  with exactly one replica. ``num_gpu == 1`` with ``gpu_milli < 1000`` is a fractional task
  (``gpu_milli`` of one shared GPU); otherwise ``num_gpu`` whole GPUs. ``gpu_spec``
  (``A|B``) becomes ``allowed_gpu_types`` (deduplicated, sorted); ``cpu_milli`` and
  ``memory_mib`` the host requests. The trace has no GPU memory request: ``memory_gib``
  is 0. ``qos`` -> ``priority``: Guaranteed 4, LS (latency-sensitive) 3, Burstable 2,
  BE (best effort) 1.
* ``demand_pct``: instead of every task, tasks are drawn (seeded, with replacement, as the
  FGD simulator does) until the requested GPUs (whole GPUs + gpu_milli / 1000) reach that
  percentage of the cluster's GPUs; a task drawn again gets a ``~k`` suffix on its name.
* ``limit``: keep only the first ``limit`` tasks (after drawing).

GPU types of the trace (public figures; memory in GiB, 1 vendor GB = 1 GiB as in
``placement.core.catalog``)
----------------------------------------------------------------------------------------
* T4: 16 GiB GDDR6, 70 W (NVIDIA T4 datasheet).
* P100: 16 GiB HBM2, 250 W (NVIDIA Tesla P100 PCIe 16 GB; the trace's P100 nodes carry 1-2
  GPUs with 8-64 cores, a PCIe build).
* V100M16 / V100M32: V100 SXM2 16 / 32 GiB HBM2, 300 W (NVIDIA V100 datasheet; the 4- and
  8-GPU nodes are SXM2 builds).
* A10: 24 GiB GDDR6, 150 W (NVIDIA A10 datasheet).
* G1, G2, G3: undisclosed by Alibaba ("G1, G2, G3 are undisclosed internal GPU codes").
  Assumption: 32 GiB and 300 W each, the figures of the largest disclosed type of the
  same cluster (V100 SXM2 32 GB). No task in the trace requests GPU memory, so the memory
  figure does not change any placement; the power figure only scales energy.
* Caps and idle draw as the catalog's rule for types without published minimums: minimum
  cap 40% of the board maximum, idle 10%, levels at 60/80/100% with the square-root
  throughput model (``placement.core.catalog``). All types are ``shareable``: the cluster
  shares GPUs of every model among fractional tasks.

Host power of a node (assumption, from the GreenSKU component table in
``shared/datasets/datacenter-power-params/README.md``, CC-BY-4.0): misc 35 W + 2U fans
112.5 W + NIC 19 W + CPU 3.625 W per core (AMD Genoa: 290 W / 80 cores) x 1.05 voltage
regulator overhead + 0.37 W per GiB of DRAM (11.85 W per 32 GB DIMM). PUE 1.12 (the
Azure figure used by that model); carbon 350 g/kWh (its emissions factor).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

from placement.core.catalog import make_gpu_type
from placement.core.domain import (
    Fleet,
    GpuType,
    Node,
    PowerDomain,
    Problem,
    Redundancy,
    Site,
    SiteKind,
    Workload,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE_DIR = REPO_ROOT.parent / "shared" / "datasets" / "alibaba-gpu-trace-2023"
NODE_FILE = "openb_node_list_gpu_node.csv"
SITE_NAME = "alibaba-openb"
RACK_NODES = 32
POWER_HEADROOM = 1.25
ENERGY_PRICE_PER_KWH = 0.08  # assumption; only relative energy matters within one site
CARBON_G_PER_KWH = 350.0
PUE = 1.12

QOS_PRIORITY: dict[str, int] = {"Guaranteed": 4, "LS": 3, "Burstable": 2, "BE": 1}


def _trace_type(name: str, memory_gib: float, max_power_w: int) -> GpuType:
    return make_gpu_type(
        name,
        memory_gib,
        max_power_w,
        min_power_cap_w=round(max_power_w * 0.4),
        idle_power_w=round(max_power_w * 0.1),
        shareable=True,
    )


ALIBABA_GPU_TYPES: tuple[GpuType, ...] = (
    _trace_type("G1", 32.0, 300),
    _trace_type("G2", 32.0, 300),
    _trace_type("G3", 32.0, 300),
    _trace_type("T4", 16.0, 70),
    _trace_type("P100", 16.0, 250),
    _trace_type("V100M16", 16.0, 300),
    _trace_type("V100M32", 32.0, 300),
    _trace_type("A10", 24.0, 150),
)
_TYPE_BY_NAME = {g.name: g for g in ALIBABA_GPU_TYPES}


@dataclass(frozen=True)
class PodRow:
    """One row of an ``openb_pod_list_*.csv`` file."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: tuple[str, ...]
    qos: str


def host_power_w(cpu_milli: int, memory_mib: int) -> int:
    """Non-GPU draw of a trace node (see the module docstring)."""
    cores = cpu_milli / 1000.0
    gib = memory_mib / 1024.0
    return round(35 + 112.5 + 19 + 3.625 * cores * 1.05 + 0.37 * gib)


def _trace_dir(trace_dir: str | os.PathLike[str] | None) -> Path:
    path = Path(trace_dir) if trace_dir is not None else DEFAULT_TRACE_DIR
    if not (path / NODE_FILE).is_file():
        raise FileNotFoundError(f"no {NODE_FILE} in {path} (give the trace folder as trace_dir)")
    return path


def read_nodes(trace_dir: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    with (_trace_dir(trace_dir) / NODE_FILE).open(newline="") as f:
        return list(csv.DictReader(f))


def read_pods(trace_dir: str | os.PathLike[str] | None = None, pod_list: str = "default") -> list[PodRow]:
    """Every row of ``openb_pod_list_<pod_list>.csv`` (CPU-only tasks included)."""
    path = _trace_dir(trace_dir) / f"openb_pod_list_{pod_list}.csv"
    rows: list[PodRow] = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            spec = tuple(sorted({s for s in (r.get("gpu_spec") or "").split("|") if s}))
            rows.append(
                PodRow(
                    name=r["name"],
                    cpu_milli=int(r["cpu_milli"]),
                    memory_mib=int(r["memory_mib"]),
                    num_gpu=int(r["num_gpu"]),
                    gpu_milli=int(r["gpu_milli"]),
                    gpu_spec=spec,
                    qos=r.get("qos") or "",
                )
            )
    return rows


def requested_gpus(pod: PodRow) -> float:
    """GPUs a task requests: ``gpu_milli / 1000`` for a sharing task, else ``num_gpu``."""
    if pod.num_gpu == 1 and pod.gpu_milli < 1000:
        return pod.gpu_milli / 1000.0
    return float(pod.num_gpu)


def _fleet(node_rows: list[dict[str, str]], extra_types: set[str]) -> Fleet:
    nodes: list[Node] = []
    racks: list[PowerDomain] = []
    rack_nameplate: list[int] = []
    for i, r in enumerate(node_rows):
        rack = f"{SITE_NAME}-r{i // RACK_NODES + 1:02d}"
        if i % RACK_NODES == 0:
            rack_nameplate.append(0)
        gpu = _TYPE_BY_NAME[r["model"]]
        node = Node(
            name=r["sn"],
            site=SITE_NAME,
            power_domain=rack,
            gpu_type=gpu.name,
            gpu_count=int(r["gpu"]),
            host_power_w=host_power_w(int(r["cpu_milli"]), int(r["memory_mib"])),
            cpu_milli=int(r["cpu_milli"]),
            host_memory_mib=int(r["memory_mib"]),
        )
        nodes.append(node)
        rack_nameplate[-1] += node.host_power_w + node.gpu_count * gpu.max_power_w
    for k, watts in enumerate(rack_nameplate):
        racks.append(
            PowerDomain(
                name=f"{SITE_NAME}-r{k + 1:02d}",
                site=SITE_NAME,
                capacity_kw=float(math.ceil(watts * POWER_HEADROOM / 1000.0)),
            )
        )
    site = Site(
        name=SITE_NAME,
        kind=SiteKind.DATACENTER,
        region="",
        capacity_kw=float(math.ceil(sum(rack_nameplate) * POWER_HEADROOM / 1000.0)),
        pue=PUE,
        redundancy=Redundancy.N,
        battery_minutes=10.0,
        has_generator=True,
        energy_price_per_kwh=ENERGY_PRICE_PER_KWH,
        carbon_g_per_kwh=CARBON_G_PER_KWH,
    )
    used = {n.gpu_type for n in nodes} | extra_types
    return Fleet(
        gpu_types=tuple(g for g in ALIBABA_GPU_TYPES if g.name in used),
        sites=(site,),
        power_domains=tuple(racks),
        nodes=tuple(nodes),
    )


def _workload(pod: PodRow, name: str) -> Workload:
    fractional = pod.num_gpu == 1 and pod.gpu_milli < 1000
    return Workload(
        name=name,
        gpus=0 if fractional else pod.num_gpu,
        gpu_milli=pod.gpu_milli if fractional else 0,
        memory_gib=0.0,
        allowed_gpu_types=pod.gpu_spec,
        min_replicas=1,
        max_replicas=1,
        priority=QOS_PRIORITY.get(pod.qos, 1),
        cpu_milli=pod.cpu_milli,
        host_memory_mib=pod.memory_mib,
    )


def import_trace(
    trace_dir: str | os.PathLike[str] | None = None,
    pod_list: str = "default",
    demand_pct: float | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> Problem:
    """The trace as a ``Problem`` (see the module docstring for the mapping)."""
    node_rows = read_nodes(trace_dir)
    pods = [p for p in read_pods(trace_dir, pod_list) if p.num_gpu > 0]
    cluster_gpus = sum(int(r["gpu"]) for r in node_rows)

    chosen: list[tuple[PodRow, str]]
    if demand_pct is None:
        chosen = [(p, p.name) for p in pods]
    else:
        if demand_pct < 0:
            raise ValueError("demand_pct must be >= 0")
        rng = random.Random(seed)
        target = cluster_gpus * demand_pct / 100.0
        drawn: dict[str, int] = {}
        chosen = []
        total = 0.0
        while total < target - 1e-9 and pods:
            p = rng.choice(pods)
            drawn[p.name] = drawn.get(p.name, 0) + 1
            k = drawn[p.name]
            chosen.append((p, p.name if k == 1 else f"{p.name}~{k}"))
            total += requested_gpus(p)
    if limit is not None:
        chosen = chosen[:limit]

    extra = {t for p, _ in chosen for t in p.gpu_spec}
    unknown = sorted(extra - set(_TYPE_BY_NAME))
    if unknown:
        raise ValueError(f"unknown GPU types in gpu_spec: {', '.join(unknown)}")
    fleet = _fleet(node_rows, extra)
    workloads = tuple(_workload(p, name) for p, name in chosen)
    log.info(
        "imported %d nodes (%d GPUs) and %d GPU tasks from %s",
        len(fleet.nodes),
        cluster_gpus,
        len(workloads),
        pod_list,
    )
    return Problem(fleet=fleet, workloads=workloads)


def fgd_arrivals(
    trace_dir: str | os.PathLike[str] | None = None,
    pod_list: str = "default",
    demand_pct: float = 130.0,
    seed: int = 0,
) -> list[tuple[PodRow, str]]:
    """Tasks in the arrival order of the FGD simulator's tuned runs, CPU-only tasks included.

    Follows ``kubernetes-scheduler-simulator`` (``SortClusterPods`` with ``shufflePod``, then
    ``TunePodsByNodeTotalResource``): every row of the pod list once, shuffled; then, when their
    GPU request is below ``demand_pct`` of the cluster, clones drawn uniformly with replacement
    from all rows are appended until the next clone would pass the target (FGD's check adds
    the clone's per-GPU milli, so a multi-GPU clone can overshoot by a few GPUs, as there);
    when above it (multigpu50), tasks at random positions are removed until it is reached.
    A clone is named ``<name>~k`` (its k-th occurrence). Seeded by ``seed`` with Python's
    ``random``, so the order differs from FGD's Go seeds 42..51 (same distribution).
    """
    if demand_pct <= 0:
        raise ValueError("demand_pct must be > 0")
    node_rows = read_nodes(trace_dir)
    pods = read_pods(trace_dir, pod_list)
    cluster_milli = 1000 * sum(int(r["gpu"]) for r in node_rows)
    target_milli = demand_pct / 100.0 * cluster_milli
    rng = random.Random(seed)
    order = sorted(pods, key=lambda p: p.name)
    rng.shuffle(order)
    chosen: list[tuple[PodRow, str]] = [(p, p.name) for p in order]
    total = sum(task_milli(p) for p in pods)
    if total > target_milli:
        while total > target_milli and chosen:
            p, _ = chosen.pop(rng.randrange(len(chosen)))
            total -= task_milli(p)
    elif total < target_milli:
        drawn: dict[str, int] = {p.name: 1 for p in pods}
        while pods:
            p = rng.choice(pods)
            per_gpu = 0 if p.num_gpu == 0 else min(p.gpu_milli, 1000) if p.num_gpu == 1 else 1000
            if total + per_gpu > target_milli:
                break
            drawn[p.name] += 1
            chosen.append((p, f"{p.name}~{drawn[p.name]}"))
            total += task_milli(p)
    return chosen


def task_milli(pod: PodRow) -> int:
    """GPU thousandths a task requests (``requested_gpus`` * 1000, exact)."""
    if pod.num_gpu == 1 and pod.gpu_milli < 1000:
        return pod.gpu_milli
    return 1000 * pod.num_gpu


def problem_for(
    tasks: list[tuple[PodRow, str]],
    trace_dir: str | os.PathLike[str] | None = None,
    node_limit: int | None = None,
) -> Problem:
    """The trace's fleet with one workload per GPU task of ``tasks`` (CPU-only tasks skipped).

    ``node_limit`` keeps the first nodes of the node list only (small slices for tests).
    """
    node_rows = read_nodes(trace_dir)
    if node_limit is not None:
        node_rows = node_rows[:node_limit]
    gpu_tasks = [(p, name) for p, name in tasks if p.num_gpu > 0]
    extra = {t for p, _ in gpu_tasks for t in p.gpu_spec}
    unknown = sorted(extra - set(_TYPE_BY_NAME))
    if unknown:
        raise ValueError(f"unknown GPU types in gpu_spec: {', '.join(unknown)}")
    return Problem(
        fleet=_fleet(node_rows, extra), workloads=tuple(_workload(p, name) for p, name in gpu_tasks)
    )
