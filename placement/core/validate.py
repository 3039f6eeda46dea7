"""Input checks: every problem with a ``Problem``, all at once, each with the path of its field.

``validate(problem)`` never raises; it returns a list of ``FieldError`` (empty when the
input is valid). Paths use the protobuf JSON names of the ``placement.v1`` messages and
list indices, e.g. ``fleet.nodes[3].powerDomain`` or ``workloads[0].maxReplicas``, so a
user can find the field in the file they wrote. ``validate_request(problem)`` adds what
a user's request must have on top (at least one node and one workload); the library's own
sub-problems (a partitioned solve's parts) may be empty.

After validation nothing cleans data again: the filter, the model, the budgets and the
verifier rely on what is checked here. The families, in order:

* strings: every name and reference at most ``MAX_NAME_CHARS`` characters (messages quote
  at most ``QUOTE_CHARS`` of a value, so a 5 MB name is never echoed back);
* names: non-empty and unique per kind; user regions and sites share one namespace
  (link endpoints);
* references: node -> site, power domain (of that site), GPU type; power domain -> site;
  workload -> allowed GPU types, user region; link endpoints; current replicas -> nodes and
  GPU indices;
* numbers: every numeric field of the request is finite and inside its documented range,
  ``RANGES`` (the one table; the proto comments state the same ranges, which
  tests/test_validate_ranges.py checks), plus the rules between fields: ``modules`` only
  for N_PLUS_1, exactly one of ``gpus`` and ``gpuMilli``, GPU power levels, replica counts;
  the energy of the whole fleet at full power must fit a 64-bit integer;
* size guards (``MAX_NODES`` and the like), so that absurd input cannot make the model explode.

The ranges keep every derived quantity finite and exact: ``capacity_kw * 1000`` (the usable
watts of ``domain.usable_power_w``) stays far inside a 64-bit integer, and so do the model's
coefficients (memory in MiB, watts, priority x work).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from placement.core.domain import (
    CurrentReplica,
    EnergyMetric,
    Fleet,
    GpuType,
    Problem,
    Redundancy,
    SolveOptions,
    Workload,
)
from placement.core.energy import energy_coefficient
from placement.core.errors import FieldError

log = logging.getLogger(__name__)

# Size guards: larger input is refused rather than handed to the solver.
MAX_NAME_CHARS = 253  # every name and reference (a Kubernetes object name has at most 253)
QUOTE_CHARS = 60  # the most of a user's value that a message quotes
MAX_GPU_COUNT = 1024  # GPUs in one node; also the most GPUs one replica may ask for
MAX_REPLICAS = 100_000  # max_replicas of one workload
MAX_TOTAL_REPLICAS = 1_000_000  # sum of max_replicas over all workloads
MAX_NODES = 100_000
MAX_WORKLOADS = 100_000
MAX_TOTAL_GPUS = 1_000_000  # sum of gpu_count over all nodes
MAX_POWER_LEVELS = 64  # per GPU type
MAX_MODULES = 64  # feeds of an N_PLUS_1 site or power domain
MAX_PRIORITY = 10_000  # keeps tier 1 (priority * work * throughput) well inside 64 bits
MAX_WORKERS = 256
MAX_POWER_W = 100_000  # one GPU board or one host
MAX_MOVE_COST = 1_000_000  # weight of one moved replica in the moves tier
MAX_MOVES = 1_000_000  # a disruption budget (the most replicas in total is MAX_TOTAL_REPLICAS)
# The largest GPU memory in the catalog is under 300 GiB; 64 TiB is a typo, and memory in MiB
# must stay far inside the 64-bit coefficients of the model (2**53 GiB overflowed CP-SAT's domains)
MAX_GPU_MEMORY_GIB = 65_536.0
# A PUE of 10 is already absurd (the Uptime Institute's 2023 survey average is 1.58); a
# price above 1,000 a kWh or a carbon intensity above 10 kg a kWh (lignite is about 1.2) is
# a typo, and such numbers would overflow the integer energy objective.
MAX_PUE = 10.0
MAX_ENERGY_PRICE_PER_KWH = 1_000.0
MAX_CARBON_G_PER_KWH = 10_000.0
MAX_ENERGY_OBJECTIVE = 2**62  # energy of the fleet at full power, in objective units (int64 headroom)
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_CAPACITY_KW = 1_000_000.0  # 1 GW for one site or power domain: above any campus built
MAX_MINUTES = 10_080.0  # a week of battery ride-through or backup need
MAX_LATENCY_MS = 10_000.0  # 10 s one way: no user-facing inference tolerates more
MAX_CPU_MILLI = 10_000_000  # 10,000 cores in one node or replica
MAX_HOST_MEMORY_MIB = 67_108_864  # 64 TiB of host memory
MAX_TIME_LIMIT_S = 86_400.0  # a day


@dataclass(frozen=True)
class Range:
    """The documented range of a numeric field: ``low..high``, ``low`` excluded when ``low_open``."""

    low: float
    high: float
    unit: str = ""  # for messages; the proto's field names carry the unit too
    low_open: bool = False
    note: str = ""  # when the range applies, if not always

    def text(self) -> str:
        """As the proto comments state it: ``range [0, 1000000]``, ``range (0, 86400]``."""
        return f"range {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}]"

    def contains(self, value: float) -> bool:
        above_low = value > self.low if self.low_open else value >= self.low
        return above_low and value <= self.high

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low_open and self.low == 0:
            return f"positive and at most {_number(self.high)}{unit}"
        if self.low_open:
            return f"more than {_number(self.low)} and at most {_number(self.high)}{unit}"
        return f"between {_number(self.low)} and {_number(self.high)}{unit}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# Every numeric field of a PlaceRequest, by proto message and field name: its range. The one
# table: validate() checks it, the proto comments state it, the README points here.
RANGES: dict[str, Range] = {
    "PowerLevel.power_cap_w": Range(0, MAX_POWER_W, "W", note="and within the type's min cap..max power"),
    "PowerLevel.relative_throughput_pct": Range(1, 100, "%"),
    "GpuType.memory_gib": Range(0, MAX_GPU_MEMORY_GIB, "GiB", low_open=True),
    "GpuType.max_power_w": Range(1, MAX_POWER_W, "W"),
    "GpuType.min_power_cap_w": Range(0, MAX_POWER_W, "W"),
    "GpuType.idle_power_w": Range(0, MAX_POWER_W, "W"),
    "Site.capacity_kw": Range(0, MAX_CAPACITY_KW, "kW"),
    "Site.pue": Range(1, MAX_PUE),
    "Site.modules": Range(2, MAX_MODULES, note="N_PLUS_1 only"),
    "Site.battery_minutes": Range(0, MAX_MINUTES, "minutes"),
    "Site.energy_price_per_kwh": Range(0, MAX_ENERGY_PRICE_PER_KWH, "per kWh"),
    "Site.carbon_g_per_kwh": Range(0, MAX_CARBON_G_PER_KWH, "g CO2 per kWh"),
    "PowerDomain.capacity_kw": Range(0, MAX_CAPACITY_KW, "kW"),
    "PowerDomain.modules": Range(2, MAX_MODULES, note="N_PLUS_1 only"),
    "Node.gpu_count": Range(1, MAX_GPU_COUNT),
    "Node.host_power_w": Range(0, MAX_POWER_W, "W"),
    "Node.cpu_milli": Range(0, MAX_CPU_MILLI, "thousandths of a core"),
    "Node.host_memory_mib": Range(0, MAX_HOST_MEMORY_MIB, "MiB"),
    "Link.latency_ms": Range(0, MAX_LATENCY_MS, "ms"),
    "Spread.min_distinct": Range(1, MAX_REPLICAS, note="and at most max_replicas"),
    "CurrentReplica.gpu_indices": Range(0, MAX_GPU_COUNT - 1, note="and below the node's gpu_count"),
    "CurrentReplica.power_cap_w": Range(0, MAX_POWER_W, "W", note="0 or one of the type's levels"),
    "Workload.gpus": Range(1, MAX_GPU_COUNT, note="whole-GPU replicas"),
    "Workload.gpu_milli": Range(1, 999, "thousandths of a GPU", note="fractional replicas"),
    "Workload.memory_gib": Range(0, MAX_GPU_MEMORY_GIB * MAX_GPU_COUNT, "GiB"),
    "Workload.min_replicas": Range(1, MAX_REPLICAS),
    "Workload.max_replicas": Range(1, MAX_REPLICAS, note="and at least min_replicas"),
    "Workload.survive_site_loss_pct": Range(0, 100, "%"),
    "Workload.backup_minutes": Range(0, MAX_MINUTES, "minutes"),
    "Workload.max_latency_ms": Range(0, MAX_LATENCY_MS, "ms"),
    "Workload.priority": Range(1, MAX_PRIORITY),
    "Workload.min_power_cap_pct": Range(0, 100, "%"),
    "Workload.cpu_milli": Range(0, MAX_CPU_MILLI, "thousandths of a core"),
    "Workload.host_memory_mib": Range(0, MAX_HOST_MEMORY_MIB, "MiB"),
    "Workload.move_cost": Range(0, MAX_MOVE_COST),
    "Workload.max_unavailable_count": Range(0, MAX_REPLICAS, "replicas"),
    "Workload.max_unavailable_pct": Range(0, 100, "%"),
    "Workload.max_per_node": Range(0, MAX_REPLICAS, "replicas"),
    "Workload.max_per_power_domain": Range(0, MAX_REPLICAS, "replicas"),
    "SolveOptions.time_limit_s": Range(0, MAX_TIME_LIMIT_S, "s", low_open=True),
    "SolveOptions.seed": Range(INT32_MIN, INT32_MAX),
    "SolveOptions.workers": Range(1, MAX_WORKERS),
    "SolveOptions.max_moves": Range(0, MAX_MOVES, "moves"),
    "SolveOptions.max_moves_per_site": Range(0, MAX_MOVES, "moves"),
    "SolveOptions.max_moves_per_power_domain": Range(0, MAX_MOVES, "moves"),
}


def quote(value: object) -> str:
    """``repr`` of a user's value, cut after ``QUOTE_CHARS`` characters with its length."""
    text = repr(value)
    if len(text) <= QUOTE_CHARS:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return f"{text[:QUOTE_CHARS]}...{size}"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.too_long: set[str] = set()  # paths whose string is over MAX_NAME_CHARS: reported once

    def add(self, path: str, message: str) -> None:
        if path in self.too_long:
            return  # the length problem says it; "unknown site 'xxx...'" would only repeat it
        self.errors.append(FieldError(path, message))

    # ---------------------------------------------------------------- strings

    def length(self, path: str, value: object) -> None:
        if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
            self.add(path, f"is {len(value):,} characters long; at most {MAX_NAME_CHARS} are allowed")
            self.too_long.add(path)

    # ---------------------------------------------------------------- numbers

    def finite(self, path: str, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"must be a number, got {quote(value)}")
            return False
        if not math.isfinite(value):
            self.add(path, f"must be a finite number, got {value}")
            return False
        return True

    def in_range(self, path: str, value: float, field: str) -> bool:
        """``value`` is a finite number inside ``RANGES[field]``."""
        r = RANGES[field]
        if not self.finite(path, value):
            return False
        if r.contains(value):
            return True
        if r.low == 0 and not r.low_open and value < 0:
            self.add(path, f"must not be negative, got {value}")
        else:
            self.add(path, f"must be {r.describe()}, got {value}")
        return False

    def names(self, items: Iterable[tuple[str, str]], kind: str) -> None:
        """Non-empty, unique names; items are (path of the name, name)."""
        first: dict[str, str] = {}
        for path, name in items:
            if not isinstance(name, str) or not name.strip():
                self.add(path, f"{kind} name is empty")
            elif name in first:
                self.add(path, f"duplicate {kind} name {quote(name)} (also at {first[name]})")
            else:
                first[name] = path


# ----------------------------------------------------------------------- strings


def _strings(c: _Checker, problem: Problem) -> None:
    """Every name and reference of the request, at most ``MAX_NAME_CHARS`` characters."""
    f = problem.fleet
    for i, g in enumerate(f.gpu_types):
        c.length(f"fleet.gpuTypes[{i}].name", g.name)
    for i, s in enumerate(f.sites):
        c.length(f"fleet.sites[{i}].name", s.name)
        c.length(f"fleet.sites[{i}].region", s.region)
    for i, d in enumerate(f.power_domains):
        c.length(f"fleet.powerDomains[{i}].name", d.name)
        c.length(f"fleet.powerDomains[{i}].site", d.site)
    for i, n in enumerate(f.nodes):
        for key, value in (
            ("name", n.name),
            ("site", n.site),
            ("powerDomain", n.power_domain),
            ("gpuType", n.gpu_type),
        ):
            c.length(f"fleet.nodes[{i}].{key}", value)
    for i, r in enumerate(f.regions):
        c.length(f"fleet.regions[{i}]", r)
    for i, link in enumerate(f.links):
        c.length(f"fleet.links[{i}].a", link.a)
        c.length(f"fleet.links[{i}].b", link.b)
    for i, w in enumerate(problem.workloads):
        p = f"workloads[{i}]"
        c.length(f"{p}.name", w.name)
        c.length(f"{p}.userRegion", w.user_region)
        for k, t in enumerate(w.allowed_gpu_types):
            c.length(f"{p}.allowedGpuTypes[{k}]", t)
        for k, cur in enumerate(w.current):
            c.length(f"{p}.current[{k}].node", cur.node)


# ----------------------------------------------------------------------- fleet


def _gpu_type(c: _Checker, g: GpuType, p: str) -> None:
    c.in_range(f"{p}.memoryGib", g.memory_gib, "GpuType.memory_gib")
    ok = c.in_range(f"{p}.maxPowerW", g.max_power_w, "GpuType.max_power_w")
    ok &= c.in_range(f"{p}.minPowerCapW", g.min_power_cap_w, "GpuType.min_power_cap_w")
    ok &= c.in_range(f"{p}.idlePowerW", g.idle_power_w, "GpuType.idle_power_w")
    if ok:
        if g.min_power_cap_w > g.max_power_w:
            c.add(
                f"{p}.minPowerCapW",
                f"min power cap {g.min_power_cap_w} W exceeds max power {g.max_power_w} W",
            )
        if g.idle_power_w > g.min_power_cap_w:
            c.add(
                f"{p}.idlePowerW",
                f"idle power {g.idle_power_w} W exceeds min power cap {g.min_power_cap_w} W",
            )
    levels = g.power_levels
    if not levels:
        c.add(f"{p}.powerLevels", "power levels are empty; give at least the uncapped level (max power)")
        return
    if len(levels) > MAX_POWER_LEVELS:
        c.add(f"{p}.powerLevels", f"too many power levels: {len(levels)} > {MAX_POWER_LEVELS}")
        return
    caps_ok = True
    for k, lv in enumerate(levels):
        lp = f"{p}.powerLevels[{k}]"
        if not c.in_range(f"{lp}.powerCapW", lv.power_cap_w, "PowerLevel.power_cap_w"):
            caps_ok = False
        elif (
            ok
            and g.min_power_cap_w <= g.max_power_w
            and not g.min_power_cap_w <= lv.power_cap_w <= g.max_power_w
        ):
            c.add(
                f"{lp}.powerCapW",
                f"power cap {lv.power_cap_w} W is outside the board range "
                f"{g.min_power_cap_w}..{g.max_power_w} W",
            )
        elif caps_ok and k > 0 and lv.power_cap_w <= levels[k - 1].power_cap_w:
            c.add(
                f"{lp}.powerCapW",
                f"power levels must be strictly ascending: {lv.power_cap_w} W after "
                f"{levels[k - 1].power_cap_w} W",
            )
        if (
            c.in_range(
                f"{lp}.relativeThroughputPct",
                lv.relative_throughput_pct,
                "PowerLevel.relative_throughput_pct",
            )
            and k > 0
            and RANGES["PowerLevel.relative_throughput_pct"].contains(levels[k - 1].relative_throughput_pct)
        ):
            prev = levels[k - 1].relative_throughput_pct
            if lv.relative_throughput_pct < prev:
                c.add(
                    f"{lp}.relativeThroughputPct",
                    f"throughput must be non-decreasing with power: {lv.relative_throughput_pct}% "
                    f"after {prev}%",
                )
    last = len(levels) - 1
    if caps_ok and ok and levels[last].power_cap_w != g.max_power_w:
        c.add(
            f"{p}.powerLevels[{last}].powerCapW",
            f"the last power level must equal max power {g.max_power_w} W, got {levels[last].power_cap_w} W",
        )


def _redundancy(c: _Checker, redundancy: Redundancy, modules: int, p: str, message: str) -> None:
    if redundancy is Redundancy.N_PLUS_1:
        c.in_range(f"{p}.modules", modules, f"{message}.modules")


def _fleet(c: _Checker, f: Fleet) -> None:
    c.names(((f"fleet.gpuTypes[{i}].name", g.name) for i, g in enumerate(f.gpu_types)), "GPU type")
    c.names(
        [(f"fleet.sites[{i}].name", s.name) for i, s in enumerate(f.sites)]
        + [(f"fleet.regions[{i}]", r) for i, r in enumerate(f.regions)],
        "site or region",
    )
    c.names(
        ((f"fleet.powerDomains[{i}].name", d.name) for i, d in enumerate(f.power_domains)), "power domain"
    )
    c.names(((f"fleet.nodes[{i}].name", n.name) for i, n in enumerate(f.nodes)), "node")

    for i, g in enumerate(f.gpu_types):
        _gpu_type(c, g, f"fleet.gpuTypes[{i}]")

    for i, s in enumerate(f.sites):
        p = f"fleet.sites[{i}]"
        c.in_range(f"{p}.capacityKw", s.capacity_kw, "Site.capacity_kw")
        c.in_range(f"{p}.pue", s.pue, "Site.pue")
        _redundancy(c, s.redundancy, s.modules, p, "Site")
        c.in_range(f"{p}.batteryMinutes", s.battery_minutes, "Site.battery_minutes")
        c.in_range(f"{p}.energyPricePerKwh", s.energy_price_per_kwh, "Site.energy_price_per_kwh")
        c.in_range(f"{p}.carbonGPerKwh", s.carbon_g_per_kwh, "Site.carbon_g_per_kwh")

    site_names = {s.name for s in f.sites}
    domain_site = {d.name: d.site for d in f.power_domains}
    gpu_names = {g.name for g in f.gpu_types}
    for i, d in enumerate(f.power_domains):
        p = f"fleet.powerDomains[{i}]"
        if d.site not in site_names:
            c.add(f"{p}.site", f"unknown site {quote(d.site)}")
        c.in_range(f"{p}.capacityKw", d.capacity_kw, "PowerDomain.capacity_kw")
        _redundancy(c, d.redundancy, d.modules, p, "PowerDomain")

    if len(f.nodes) > MAX_NODES:
        c.add("fleet.nodes", f"too many nodes: {len(f.nodes)} > {MAX_NODES}")
    total_gpus = 0
    for i, n in enumerate(f.nodes):
        p = f"fleet.nodes[{i}]"
        if n.site not in site_names:
            c.add(f"{p}.site", f"unknown site {quote(n.site)}")
        if n.power_domain not in domain_site:
            c.add(f"{p}.powerDomain", f"unknown power domain {quote(n.power_domain)}")
        elif (
            domain_site[n.power_domain] != n.site
            and n.site in site_names
            and domain_site[n.power_domain] in site_names
        ):
            c.add(
                f"{p}.powerDomain",
                f"power domain {quote(n.power_domain)} belongs to site {quote(domain_site[n.power_domain])}, "
                f"not to the node's site {quote(n.site)}",
            )
        if n.gpu_type not in gpu_names:
            c.add(f"{p}.gpuType", f"unknown GPU type {quote(n.gpu_type)}")
        if c.in_range(f"{p}.gpuCount", n.gpu_count, "Node.gpu_count"):
            total_gpus += n.gpu_count
        c.in_range(f"{p}.hostPowerW", n.host_power_w, "Node.host_power_w")
        c.in_range(f"{p}.cpuMilli", n.cpu_milli, "Node.cpu_milli")
        c.in_range(f"{p}.hostMemoryMib", n.host_memory_mib, "Node.host_memory_mib")
    if total_gpus > MAX_TOTAL_GPUS:
        c.add("fleet.nodes", f"too many GPUs in the fleet: {total_gpus} > {MAX_TOTAL_GPUS}")

    endpoints = site_names | set(f.regions)
    for i, k in enumerate(f.links):
        p = f"fleet.links[{i}]"
        for end, name in (("a", k.a), ("b", k.b)):
            if name not in endpoints:
                c.add(f"{p}.{end}", f"unknown endpoint {quote(name)}: not a region or site")
        if k.a == k.b and k.a:
            c.add(f"{p}.b", f"link joins {quote(k.a)} to itself")
        c.in_range(f"{p}.latencyMs", k.latency_ms, "Link.latency_ms")


# ------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class _Index:
    """Names of the fleet, built once for all workloads."""

    gpu_types: frozenset[str]
    regions: frozenset[str]
    linked: frozenset[str]  # endpoints of at least one link
    gpu_count: dict[str, int]  # node name -> GPUs
    gpu_of: dict[str, GpuType]  # node name -> its GPU type, where the type exists

    @staticmethod
    def of(f: Fleet, errors: Iterable[FieldError] = ()) -> _Index:
        """``errors``: those found so far; a GPU type with one is not read (its caps are not checked)."""
        bad = {e.path.split("]")[0] + "]" for e in errors if e.path.startswith("fleet.gpuTypes[")}
        types = {g.name: g for i, g in enumerate(f.gpu_types) if f"fleet.gpuTypes[{i}]" not in bad}
        return _Index(
            gpu_of={n.name: types[n.gpu_type] for n in f.nodes if n.gpu_type in types},
            gpu_types=frozenset(g.name for g in f.gpu_types),
            regions=frozenset(f.regions),
            linked=frozenset(k.a for k in f.links) | frozenset(k.b for k in f.links),
            gpu_count={n.name: n.gpu_count for n in f.nodes},
        )


def _workload(c: _Checker, w: Workload, p: str, ix: _Index) -> None:
    # size of one replica: exactly one of gpus >= 1 and 1 <= gpu_milli <= 999
    if w.gpus != 0 and w.gpu_milli != 0:
        c.add(f"{p}.gpuMilli", f"give exactly one of gpus ({w.gpus}) and gpuMilli ({w.gpu_milli}), not both")
    elif w.gpus == 0 and w.gpu_milli == 0:
        c.add(f"{p}.gpus", "give exactly one of gpus (>= 1) and gpuMilli (1..999); both are 0")
    elif w.gpus != 0:
        c.in_range(f"{p}.gpus", w.gpus, "Workload.gpus")
    else:
        c.in_range(f"{p}.gpuMilli", w.gpu_milli, "Workload.gpu_milli")
    c.in_range(f"{p}.memoryGib", w.memory_gib, "Workload.memory_gib")

    for k, t in enumerate(w.allowed_gpu_types):
        if t not in ix.gpu_types:
            c.add(f"{p}.allowedGpuTypes[{k}]", f"unknown GPU type {quote(t)}")

    min_ok = c.in_range(f"{p}.minReplicas", w.min_replicas, "Workload.min_replicas")
    max_ok = c.in_range(f"{p}.maxReplicas", w.max_replicas, "Workload.max_replicas")
    if max_ok and min_ok and w.max_replicas < w.min_replicas:
        c.add(f"{p}.maxReplicas", f"max replicas {w.max_replicas} is below min replicas {w.min_replicas}")
    spread_ok = w.spread is not None and c.in_range(
        f"{p}.spread.minDistinct", w.spread.min_distinct, "Spread.min_distinct"
    )
    if spread_ok and max_ok and w.spread is not None and w.spread.min_distinct > w.max_replicas:
        c.add(
            f"{p}.spread.minDistinct",
            f"min distinct {w.spread.min_distinct} exceeds max replicas {w.max_replicas}: "
            "the workload could never be placed",
        )
    c.in_range(f"{p}.surviveSiteLossPct", w.survive_site_loss_pct, "Workload.survive_site_loss_pct")
    c.in_range(f"{p}.backupMinutes", w.backup_minutes, "Workload.backup_minutes")
    c.in_range(f"{p}.priority", w.priority, "Workload.priority")
    c.in_range(f"{p}.minPowerCapPct", w.min_power_cap_pct, "Workload.min_power_cap_pct")
    c.in_range(f"{p}.cpuMilli", w.cpu_milli, "Workload.cpu_milli")
    c.in_range(f"{p}.hostMemoryMib", w.host_memory_mib, "Workload.host_memory_mib")
    c.in_range(f"{p}.moveCost", w.move_cost, "Workload.move_cost")
    if w.max_unavailable_count is not None:
        c.in_range(f"{p}.maxUnavailableCount", w.max_unavailable_count, "Workload.max_unavailable_count")
        if w.max_unavailable_pct is not None:
            c.add(f"{p}.maxUnavailablePct", "give maxUnavailableCount or maxUnavailablePct, not both")
    elif w.max_unavailable_pct is not None:
        c.in_range(f"{p}.maxUnavailablePct", w.max_unavailable_pct, "Workload.max_unavailable_pct")
    c.in_range(f"{p}.maxPerNode", w.max_per_node, "Workload.max_per_node")
    c.in_range(f"{p}.maxPerPowerDomain", w.max_per_power_domain, "Workload.max_per_power_domain")

    # latency
    if w.user_region and w.user_region not in ix.regions:
        c.add(f"{p}.userRegion", f"unknown user region {quote(w.user_region)}; not in fleet.regions")
    if c.in_range(f"{p}.maxLatencyMs", w.max_latency_ms, "Workload.max_latency_ms") and w.max_latency_ms > 0:
        if not w.user_region:
            c.add(f"{p}.userRegion", f"max latency {w.max_latency_ms} ms needs a user region; it is empty")
        elif w.user_region in ix.regions and w.user_region not in ix.linked:
            c.add(
                f"{p}.userRegion",
                f"user region {quote(w.user_region)} has no link, so the latency rule "
                f"({w.max_latency_ms} ms) cannot be met anywhere",
            )

    # current placement
    if max_ok and len(w.current) > w.max_replicas:
        c.add(f"{p}.current", f"{len(w.current)} current replicas exceed max replicas {w.max_replicas}")
    if w.pinned and min_ok and len(w.current) < w.min_replicas:
        c.add(
            f"{p}.pinned",
            f"pinned with {len(w.current)} current replicas, fewer than min replicas {w.min_replicas}",
        )
    gpu_count = ix.gpu_count
    want = 1 if w.gpus == 0 else w.gpus
    for k, r in enumerate(w.current):
        rp = f"{p}.current[{k}]"
        if r.node not in gpu_count:
            c.add(f"{rp}.node", f"unknown node {quote(r.node)}")
        if len(r.gpu_indices) != want:
            kind = "a fractional replica holds 1 GPU" if w.gpus == 0 else f"a replica holds {w.gpus} GPUs"
            c.add(f"{rp}.gpuIndices", f"{len(r.gpu_indices)} GPU indices given; {kind}")
        seen: set[int] = set()
        count = gpu_count.get(r.node)
        if not isinstance(count, int) or not 1 <= count <= MAX_GPU_COUNT:
            count = None  # unknown node or a bad gpu_count, reported with the node
        for j, g in enumerate(r.gpu_indices):
            if not isinstance(g, int) or g < 0 or (count is not None and g >= count):
                bound = f"0..{count - 1}" if count is not None else "non-negative"
                c.add(f"{rp}.gpuIndices[{j}]", f"GPU index {quote(g)} out of range {bound}")
            elif not c.in_range(f"{rp}.gpuIndices[{j}]", g, "CurrentReplica.gpu_indices"):
                pass
            elif g in seen:
                c.add(f"{rp}.gpuIndices[{j}]", f"duplicate GPU index {g}")
            seen.add(g)
        _current_cap(c, w, r, f"{rp}.powerCapW", ix)


def _current_cap(c: _Checker, w: Workload, r: CurrentReplica, path: str, ix: _Index) -> None:
    """A recorded cap: 0 (the board maximum), else one of the node's type's levels; a pinned
    replica's not below the workload's floor (a running one below it is raised where it runs,
    no move); a fractional replica's GPU runs uncapped (0 or the board maximum)."""
    if r.power_cap_w == 0 or not c.in_range(path, r.power_cap_w, "CurrentReplica.power_cap_w"):
        return
    gpu = ix.gpu_of.get(r.node)
    if gpu is None or not gpu.power_levels:
        return  # an unknown node is reported with the node, a type without levels with the type
    if w.gpus == 0:
        if r.power_cap_w != gpu.max_power_w:
            c.add(
                path,
                f"a fractional replica's GPU runs uncapped: 0 or {gpu.max_power_w} W, got {r.power_cap_w} W",
            )
        return
    levels = [lv.power_cap_w for lv in gpu.power_levels]
    if r.power_cap_w not in levels:
        c.add(path, f"power cap {r.power_cap_w} W is not one of the {gpu.name} levels {levels}")
    elif w.pinned and r.power_cap_w * 100 < w.min_power_cap_pct * gpu.max_power_w:
        c.add(
            path,
            f"pinned at power cap {r.power_cap_w} W, below the workload's floor of "
            f"{w.min_power_cap_pct}% of {gpu.max_power_w} W",
        )


def _options(c: _Checker, o: SolveOptions) -> None:
    c.in_range("options.timeLimitS", o.time_limit_s, "SolveOptions.time_limit_s")
    c.in_range("options.workers", o.workers, "SolveOptions.workers")
    c.in_range("options.seed", o.seed, "SolveOptions.seed")
    for path, value, field in (
        ("options.maxMoves", o.max_moves, "SolveOptions.max_moves"),
        ("options.maxMovesPerSite", o.max_moves_per_site, "SolveOptions.max_moves_per_site"),
        (
            "options.maxMovesPerPowerDomain",
            o.max_moves_per_power_domain,
            "SolveOptions.max_moves_per_power_domain",
        ),
    ):
        if value is not None:
            c.in_range(path, value, field)


def _energy_range(c: _Checker, problem: Problem) -> None:
    """The energy tier of the fleet at full power must fit a 64-bit integer (model, plan, proto)."""
    f = problem.fleet
    metric = problem.options.energy_metric
    max_power = {g.name: g.max_power_w for g in f.gpu_types}
    site_w: dict[str, int] = {}
    for n in f.nodes:
        site_w[n.site] = site_w.get(n.site, 0) + n.host_power_w + n.gpu_count * max_power[n.gpu_type]
    terms = [(energy_coefficient(s, metric) * site_w.get(s.name, 0), i) for i, s in enumerate(f.sites)]
    if sum(t for t, _ in terms) <= MAX_ENERGY_OBJECTIVE:
        return
    _, i = max(terms)
    field = "carbonGPerKwh" if metric is EnergyMetric.CARBON else "energyPricePerKwh"
    c.add(
        f"fleet.sites[{i}].{field}",
        "the fleet's energy at full power (price or carbon x PUE x IT watts, summed over sites) is too "
        "large to compute exactly; use realistic units (currency or g CO2 per kWh)",
    )


def validate(problem: Problem) -> list[FieldError]:
    """Every problem with the input, in field order; empty when the input is valid. Never raises."""
    c = _Checker()
    _strings(c, problem)
    f = problem.fleet
    _fleet(c, f)

    if len(problem.workloads) > MAX_WORKLOADS:
        c.add("workloads", f"too many workloads: {len(problem.workloads)} > {MAX_WORKLOADS}")
    c.names(((f"workloads[{i}].name", w.name) for i, w in enumerate(problem.workloads)), "workload")
    ix = _Index.of(f, c.errors)
    total = 0
    for i, w in enumerate(problem.workloads):
        _workload(c, w, f"workloads[{i}]", ix)
        if isinstance(w.max_replicas, int) and 1 <= w.max_replicas <= MAX_REPLICAS:
            total += w.max_replicas
    if total > MAX_TOTAL_REPLICAS:
        c.add("workloads", f"too many replicas in total: sum of maxReplicas {total} > {MAX_TOTAL_REPLICAS}")

    _options(c, problem.options)
    if not c.errors:
        _energy_range(c, problem)
    if c.errors:
        log.debug("validation found %d problems", len(c.errors))
    return c.errors


def validate_request(problem: Problem) -> list[FieldError]:
    """``validate`` plus what a user's request must hold: at least one node and one workload.

    An empty fleet or an empty list of workloads is a mistake in what was sent (a wrong file,
    a folder without its workloads), not a plan that places everything.
    """
    errors: list[FieldError] = []
    if not problem.fleet.nodes:
        errors.append(FieldError("fleet.nodes", "the fleet has no nodes; give at least one"))
    if not problem.workloads:
        errors.append(FieldError("workloads", "there are no workloads to place; give at least one"))
    return errors + validate(problem)
