"""Input checks: every problem with a ``Problem``, all at once, each with the path of its field.

``validate(problem)`` never raises; it returns a list of ``FieldError`` (empty when the
input is valid). Paths use the protobuf JSON names of the ``placement.v1`` messages and
list indices, e.g. ``fleet.nodes[3].powerDomain`` or ``workloads[0].maxReplicas``, so a
user can find the field in the file they wrote.

After validation nothing cleans data again: the filter, the model, the budgets and the
verifier rely on what is checked here. The families, in order:

* names: non-empty and unique per kind; user regions and sites share one namespace
  (link endpoints);
* references: node -> site, power domain (of that site), GPU type; power domain -> site;
  workload -> allowed GPU types, user region; link endpoints; current replicas -> nodes and
  GPU indices;
* numbers: finite, non-negative powers, memories, capacities, latencies, prices; ``1 <= pue <= 10``,
  prices and carbon intensities bounded, and the energy of the whole fleet at full power must
  fit a 64-bit integer;
  ``modules >= 2`` for N_PLUS_1; percentages 0..100; GPU power levels; replica counts;
* size guards (``LIMITS``), so that absurd input cannot make the model explode.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from placement.domain import EnergyMetric, Fleet, GpuType, Problem, Redundancy, SolveOptions, Workload
from placement.energy import energy_coefficient
from placement.errors import FieldError

log = logging.getLogger(__name__)

# Size guards: larger input is refused rather than handed to the solver.
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


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    # ---------------------------------------------------------------- numbers

    def finite(self, path: str, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"must be a number, got {value!r}")
            return False
        if not math.isfinite(value):
            self.add(path, f"must be a finite number, got {value}")
            return False
        return True

    def non_negative(self, path: str, value: float) -> bool:
        if not self.finite(path, value):
            return False
        if value < 0:
            self.add(path, f"must not be negative, got {value}")
            return False
        return True

    def non_negative_up_to(self, path: str, value: float, high: float) -> bool:
        if not self.non_negative(path, value):
            return False
        if value > high:
            self.add(path, f"must be at most {high:g}, got {value}")
            return False
        return True

    def at_least(self, path: str, value: float, low: float) -> bool:
        if not self.finite(path, value):
            return False
        if value < low:
            self.add(path, f"must be at least {low}, got {value}")
            return False
        return True

    def between(self, path: str, value: float, low: float, high: float) -> bool:
        if not self.finite(path, value):
            return False
        if not low <= value <= high:
            self.add(path, f"must be between {low} and {high}, got {value}")
            return False
        return True

    def names(self, items: Iterable[tuple[str, str]], kind: str) -> None:
        """Non-empty, unique names; items are (path of the name, name)."""
        first: dict[str, str] = {}
        for path, name in items:
            if not isinstance(name, str) or not name.strip():
                self.add(path, f"{kind} name is empty")
            elif name in first:
                self.add(path, f"duplicate {kind} name {name!r} (also at {first[name]})")
            else:
                first[name] = path


# ----------------------------------------------------------------------- fleet


def _gpu_type(c: _Checker, g: GpuType, p: str) -> None:
    if not math.isfinite(g.memory_gib) or g.memory_gib <= 0:
        c.add(f"{p}.memoryGib", f"must be a positive finite number of GiB, got {g.memory_gib}")
    elif g.memory_gib > MAX_GPU_MEMORY_GIB:
        c.add(f"{p}.memoryGib", f"must be at most {MAX_GPU_MEMORY_GIB:g} GiB, got {g.memory_gib}")
    ok = c.between(f"{p}.maxPowerW", g.max_power_w, 1, MAX_POWER_W)
    ok &= c.non_negative(f"{p}.minPowerCapW", g.min_power_cap_w)
    ok &= c.non_negative(f"{p}.idlePowerW", g.idle_power_w)
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
    for k, lv in enumerate(levels):
        lp = f"{p}.powerLevels[{k}]"
        if (
            ok
            and g.min_power_cap_w <= g.max_power_w
            and not g.min_power_cap_w <= lv.power_cap_w <= g.max_power_w
        ):
            c.add(
                f"{lp}.powerCapW",
                f"power cap {lv.power_cap_w} W is outside the board range "
                f"{g.min_power_cap_w}..{g.max_power_w} W",
            )
        if k > 0 and lv.power_cap_w <= levels[k - 1].power_cap_w:
            c.add(
                f"{lp}.powerCapW",
                f"power levels must be strictly ascending: {lv.power_cap_w} W after "
                f"{levels[k - 1].power_cap_w} W",
            )
        if c.between(f"{lp}.relativeThroughputPct", lv.relative_throughput_pct, 1, 100) and k > 0:
            prev = levels[k - 1].relative_throughput_pct
            if lv.relative_throughput_pct < prev:
                c.add(
                    f"{lp}.relativeThroughputPct",
                    f"throughput must be non-decreasing with power: {lv.relative_throughput_pct}% "
                    f"after {prev}%",
                )
    last = len(levels) - 1
    if levels[last].power_cap_w != g.max_power_w:
        c.add(
            f"{p}.powerLevels[{last}].powerCapW",
            f"the last power level must equal max power {g.max_power_w} W, got {levels[last].power_cap_w} W",
        )


def _redundancy(c: _Checker, redundancy: Redundancy, modules: int, p: str) -> None:
    if redundancy is Redundancy.N_PLUS_1:
        c.between(f"{p}.modules", modules, 2, MAX_MODULES)


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
        c.non_negative(f"{p}.capacityKw", s.capacity_kw)
        c.between(f"{p}.pue", s.pue, 1.0, MAX_PUE)
        _redundancy(c, s.redundancy, s.modules, p)
        c.non_negative(f"{p}.batteryMinutes", s.battery_minutes)
        c.non_negative_up_to(f"{p}.energyPricePerKwh", s.energy_price_per_kwh, MAX_ENERGY_PRICE_PER_KWH)
        c.non_negative_up_to(f"{p}.carbonGPerKwh", s.carbon_g_per_kwh, MAX_CARBON_G_PER_KWH)

    site_names = {s.name for s in f.sites}
    domain_site = {d.name: d.site for d in f.power_domains}
    gpu_names = {g.name for g in f.gpu_types}
    for i, d in enumerate(f.power_domains):
        p = f"fleet.powerDomains[{i}]"
        if d.site not in site_names:
            c.add(f"{p}.site", f"unknown site {d.site!r}")
        c.non_negative(f"{p}.capacityKw", d.capacity_kw)
        _redundancy(c, d.redundancy, d.modules, p)

    if len(f.nodes) > MAX_NODES:
        c.add("fleet.nodes", f"too many nodes: {len(f.nodes)} > {MAX_NODES}")
    total_gpus = 0
    for i, n in enumerate(f.nodes):
        p = f"fleet.nodes[{i}]"
        if n.site not in site_names:
            c.add(f"{p}.site", f"unknown site {n.site!r}")
        if n.power_domain not in domain_site:
            c.add(f"{p}.powerDomain", f"unknown power domain {n.power_domain!r}")
        elif (
            domain_site[n.power_domain] != n.site
            and n.site in site_names
            and domain_site[n.power_domain] in site_names
        ):
            c.add(
                f"{p}.powerDomain",
                f"power domain {n.power_domain!r} belongs to site {domain_site[n.power_domain]!r}, "
                f"not to the node's site {n.site!r}",
            )
        if n.gpu_type not in gpu_names:
            c.add(f"{p}.gpuType", f"unknown GPU type {n.gpu_type!r}")
        if c.between(f"{p}.gpuCount", n.gpu_count, 1, MAX_GPU_COUNT):
            total_gpus += n.gpu_count
        c.between(f"{p}.hostPowerW", n.host_power_w, 0, MAX_POWER_W)
        c.non_negative(f"{p}.cpuMilli", n.cpu_milli)
        c.non_negative(f"{p}.hostMemoryMib", n.host_memory_mib)
    if total_gpus > MAX_TOTAL_GPUS:
        c.add("fleet.nodes", f"too many GPUs in the fleet: {total_gpus} > {MAX_TOTAL_GPUS}")

    endpoints = site_names | set(f.regions)
    for i, k in enumerate(f.links):
        p = f"fleet.links[{i}]"
        for end, name in (("a", k.a), ("b", k.b)):
            if name not in endpoints:
                c.add(f"{p}.{end}", f"unknown endpoint {name!r}: not a region or site")
        if k.a == k.b and k.a:
            c.add(f"{p}.b", f"link joins {k.a!r} to itself")
        c.non_negative(f"{p}.latencyMs", k.latency_ms)


# ------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class _Index:
    """Names of the fleet, built once for all workloads."""

    gpu_types: frozenset[str]
    regions: frozenset[str]
    linked: frozenset[str]  # endpoints of at least one link
    gpu_count: dict[str, int]  # node name -> GPUs

    @staticmethod
    def of(f: Fleet) -> _Index:
        return _Index(
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
        c.between(f"{p}.gpus", w.gpus, 1, MAX_GPU_COUNT)
    else:
        c.between(f"{p}.gpuMilli", w.gpu_milli, 1, 999)
    c.non_negative_up_to(f"{p}.memoryGib", w.memory_gib, MAX_GPU_MEMORY_GIB * MAX_GPU_COUNT)

    for k, t in enumerate(w.allowed_gpu_types):
        if t not in ix.gpu_types:
            c.add(f"{p}.allowedGpuTypes[{k}]", f"unknown GPU type {t!r}")

    min_ok = c.between(f"{p}.minReplicas", w.min_replicas, 1, MAX_REPLICAS)
    max_ok = c.between(f"{p}.maxReplicas", w.max_replicas, 1, MAX_REPLICAS)
    if max_ok and min_ok and w.max_replicas < w.min_replicas:
        c.add(f"{p}.maxReplicas", f"max replicas {w.max_replicas} is below min replicas {w.min_replicas}")
    spread_ok = w.spread is not None and c.at_least(f"{p}.spread.minDistinct", w.spread.min_distinct, 1)
    if spread_ok and w.spread is not None and w.spread.min_distinct > w.max_replicas:
        c.add(
            f"{p}.spread.minDistinct",
            f"min distinct {w.spread.min_distinct} exceeds max replicas {w.max_replicas}: "
            "the workload could never be placed",
        )
    c.between(f"{p}.surviveSiteLossPct", w.survive_site_loss_pct, 0, 100)
    c.non_negative(f"{p}.backupMinutes", w.backup_minutes)
    c.between(f"{p}.priority", w.priority, 1, MAX_PRIORITY)
    c.between(f"{p}.minPowerCapPct", w.min_power_cap_pct, 0, 100)
    c.non_negative(f"{p}.cpuMilli", w.cpu_milli)
    c.non_negative(f"{p}.hostMemoryMib", w.host_memory_mib)

    # latency
    if w.user_region and w.user_region not in ix.regions:
        c.add(f"{p}.userRegion", f"unknown user region {w.user_region!r}; not in fleet.regions")
    if c.non_negative(f"{p}.maxLatencyMs", w.max_latency_ms) and w.max_latency_ms > 0:
        if not w.user_region:
            c.add(f"{p}.userRegion", f"max latency {w.max_latency_ms} ms needs a user region; it is empty")
        elif w.user_region in ix.regions and w.user_region not in ix.linked:
            c.add(
                f"{p}.userRegion",
                f"user region {w.user_region!r} has no link, so the latency rule "
                f"({w.max_latency_ms} ms) cannot be met anywhere",
            )

    # current placement
    if len(w.current) > w.max_replicas >= 1:
        c.add(f"{p}.current", f"{len(w.current)} current replicas exceed max replicas {w.max_replicas}")
    if w.pinned and len(w.current) < w.min_replicas:
        c.add(
            f"{p}.pinned",
            f"pinned with {len(w.current)} current replicas, fewer than min replicas {w.min_replicas}",
        )
    gpu_count = ix.gpu_count
    want = 1 if w.gpus == 0 else w.gpus
    for k, r in enumerate(w.current):
        rp = f"{p}.current[{k}]"
        if r.node not in gpu_count:
            c.add(f"{rp}.node", f"unknown node {r.node!r}")
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
                c.add(f"{rp}.gpuIndices[{j}]", f"GPU index {g} out of range {bound}")
            elif g in seen:
                c.add(f"{rp}.gpuIndices[{j}]", f"duplicate GPU index {g}")
            seen.add(g)


def _options(c: _Checker, o: SolveOptions) -> None:
    if not math.isfinite(o.time_limit_s) or o.time_limit_s <= 0:
        c.add("options.timeLimitS", f"time limit must be a positive number of seconds, got {o.time_limit_s}")
    c.between("options.workers", o.workers, 1, MAX_WORKERS)
    c.between("options.seed", o.seed, INT32_MIN, INT32_MAX)


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
    f = problem.fleet
    _fleet(c, f)

    if len(problem.workloads) > MAX_WORKLOADS:
        c.add("workloads", f"too many workloads: {len(problem.workloads)} > {MAX_WORKLOADS}")
    c.names(((f"workloads[{i}].name", w.name) for i, w in enumerate(problem.workloads)), "workload")
    ix = _Index.of(f)
    total = 0
    for i, w in enumerate(problem.workloads):
        _workload(c, w, f"workloads[{i}]", ix)
        if 1 <= w.max_replicas <= MAX_REPLICAS:
            total += w.max_replicas
    if total > MAX_TOTAL_REPLICAS:
        c.add("workloads", f"too many replicas in total: sum of maxReplicas {total} > {MAX_TOTAL_REPLICAS}")

    _options(c, problem.options)
    if not c.errors:
        _energy_range(c, problem)
    if c.errors:
        log.debug("validation found %d problems", len(c.errors))
    return c.errors
