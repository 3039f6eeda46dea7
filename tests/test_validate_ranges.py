"""Every numeric field of a request has one documented range: ``validate.RANGES``.

The table covers exactly the numeric fields of ``PlaceRequest``; the proto comment of each
field states the same range; and ``validate`` accepts each range's ends and refuses the
values just outside them, with the field's path (table-driven, one row per field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from placement.core import domain as d
from placement.core.validate import RANGES, validate, validate_request
from tests.builders import REPO, sample_problem
from tests.mutations import Mutation, add, both, gpu, link, node, opts, pdom, site, wl
from wire.gen.placement.v1 import placement_pb2 as pb

PROTO = REPO / "proto" / "placement" / "v1" / "placement.proto"
NUMERIC = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_DOUBLE,
    FieldDescriptor.TYPE_FLOAT,
}
UP = math.inf
DOWN = -math.inf


def _numeric_fields(desc: Descriptor, seen: set[str]) -> Iterator[str]:
    if desc.name in seen:
        return
    seen.add(desc.name)
    for f in desc.fields:
        if f.type in NUMERIC:
            yield f"{desc.name}.{f.name}"
        elif f.message_type is not None:
            yield from _numeric_fields(f.message_type, seen)


def _proto_comments() -> dict[str, str]:
    """``Message.field`` -> its comment in the .proto (the trailing one and the lines just above)."""
    out: dict[str, str] = {}
    message = ""
    above: list[str] = []
    for line in PROTO.read_text().splitlines():
        stripped = line.strip()
        if m := re.match(r"^message (\w+) \{", stripped):
            message, above = m.group(1), []
        elif stripped.startswith("//"):
            above.append(stripped[2:])
        elif m := re.match(r"^(?:optional |repeated )?[\w.]+ (\w+) = \d+;(.*)$", stripped):
            out[f"{message}.{m.group(1)}"] = " ".join([*above, m.group(2).lstrip(" /")])
            above = []
        else:
            above = []
    return out


def test_the_table_covers_every_numeric_request_field() -> None:
    fields = set(_numeric_fields(pb.PlaceRequest.DESCRIPTOR, set()))
    assert len(fields) >= 30  # the walk itself works
    assert sorted(fields - set(RANGES)) == [], "numeric fields without a range"
    assert sorted(set(RANGES) - fields) == [], "ranges of fields that do not exist"


def test_the_proto_comments_state_the_tables_ranges() -> None:
    comments = _proto_comments()
    wrong = {key: comments.get(key, "") for key, r in RANGES.items() if r.text() not in comments.get(key, "")}
    assert wrong == {}, "proto comments that do not state the range of RANGES"
    # and no comment states a range the table does not have (a stale copy)
    stated = {key: re.findall(r"range [\[(][^\]]*\]", text) for key, text in comments.items()}
    extra = {key: found for key, found in stated.items() if found and found != [RANGES[key].text()]}
    assert extra == {}


def test_range_text_and_description() -> None:
    assert RANGES["Site.capacity_kw"].text() == "range [0, 1000000]"
    assert RANGES["SolveOptions.time_limit_s"].text() == "range (0, 86400]"
    assert RANGES["Site.pue"].describe() == "between 1 and 10"
    assert RANGES["GpuType.memory_gib"].describe() == "positive and at most 65536 GiB"


# --------------------------------------------------------------- each range's ends


def _after(x: float, direction: float) -> float:
    return math.nextafter(float(x), direction)


def _gpu_at(cap: int, **kw: Any) -> Mutation:
    """GPU type 1 (L4) with one power level at ``cap`` W, its max power."""
    return gpu(1, max_power_w=cap, power_levels=(d.PowerLevel(cap, 100),), **kw)


def _wide(i: int, **kw: Any) -> Mutation:
    """Workload ``i`` allowed up to 100,000 replicas, so that replica-bound fields reach their ends."""
    return wl(i, max_replicas=100_000, **kw)


def _row(key: str, path: str, inside: list[Mutation], outside: list[Mutation]) -> Any:
    return pytest.param(key, path, inside, outside, id=key)


def _current(idx: tuple[int, ...]) -> Mutation:
    return both(node(0, gpu_count=1024), wl(0, current=(d.CurrentReplica("n1", idx),)))


def _big_h100() -> Mutation:
    """GPU type 0 (H100, node n1's) with its top level at 100,000 W."""
    return gpu(0, max_power_w=100_000, power_levels=(d.PowerLevel(350, 70), d.PowerLevel(100_000, 100)))


def _cap(cap_w: int) -> Mutation:
    """Workload 0's first current replica (2 GPUs on n1, an H100) recorded at ``cap_w``."""
    return wl(0, current=(d.CurrentReplica("n1", (0, 1), cap_w),), min_power_cap_pct=0)


ROWS = [
    _row("PowerLevel.power_cap_w", "fleet.gpuTypes[1].powerLevels[0].powerCapW",
         [_gpu_at(100_000), gpu(1, min_power_cap_w=0, idle_power_w=0,
                                power_levels=(d.PowerLevel(0, 50), d.PowerLevel(72, 100)))],
         [gpu(1, max_power_w=100_000, power_levels=(d.PowerLevel(100_001, 100),)),
          gpu(1, min_power_cap_w=0, idle_power_w=0, power_levels=(d.PowerLevel(-1, 50), d.PowerLevel(72, 100)))]),
    _row("PowerLevel.relative_throughput_pct", "fleet.gpuTypes[1].powerLevels[0].relativeThroughputPct",
         [gpu(1, power_levels=(d.PowerLevel(72, 1),)), gpu(1, power_levels=(d.PowerLevel(72, 100),))],
         [gpu(1, power_levels=(d.PowerLevel(72, 0),)), gpu(1, power_levels=(d.PowerLevel(72, 101),))]),
    _row("GpuType.memory_gib", "fleet.gpuTypes[0].memoryGib",
         [gpu(0, memory_gib=65_536.0), gpu(0, memory_gib=1e-9)],
         [gpu(0, memory_gib=_after(65_536, UP)), gpu(0, memory_gib=0.0), gpu(0, memory_gib=1e308)]),
    _row("GpuType.max_power_w", "fleet.gpuTypes[1].maxPowerW",
         [_gpu_at(100_000), _gpu_at(1, min_power_cap_w=0, idle_power_w=0)],
         [_gpu_at(100_001), _gpu_at(0, min_power_cap_w=0, idle_power_w=0)]),
    _row("GpuType.min_power_cap_w", "fleet.gpuTypes[1].minPowerCapW",
         [_gpu_at(100_000, min_power_cap_w=100_000), gpu(1, min_power_cap_w=0, idle_power_w=0)],
         [_gpu_at(100_000, min_power_cap_w=100_001), gpu(1, min_power_cap_w=-1, idle_power_w=0)]),
    _row("GpuType.idle_power_w", "fleet.gpuTypes[1].idlePowerW",
         [_gpu_at(100_000, min_power_cap_w=100_000, idle_power_w=100_000), gpu(1, idle_power_w=0)],
         [_gpu_at(100_000, min_power_cap_w=100_000, idle_power_w=100_001), gpu(1, idle_power_w=-1)]),
    _row("Site.capacity_kw", "fleet.sites[0].capacityKw",
         [site(0, capacity_kw=1e6), site(0, capacity_kw=0.0)],
         [site(0, capacity_kw=_after(1e6, UP)), site(0, capacity_kw=1e308), site(0, capacity_kw=-1e-9)]),
    _row("Site.pue", "fleet.sites[1].pue",
         [site(1, pue=1.0), site(1, pue=10.0)], [site(1, pue=_after(1, DOWN)), site(1, pue=_after(10, UP))]),
    _row("Site.modules", "fleet.sites[0].modules",
         [site(0, modules=2), site(0, modules=64)], [site(0, modules=1), site(0, modules=65)]),
    _row("Site.battery_minutes", "fleet.sites[1].batteryMinutes",
         [site(1, battery_minutes=0.0), site(1, battery_minutes=10_080.0)],
         [site(1, battery_minutes=-0.5), site(1, battery_minutes=10_080.5)]),
    _row("Site.energy_price_per_kwh", "fleet.sites[0].energyPricePerKwh",
         [site(0, energy_price_per_kwh=0.0), site(0, energy_price_per_kwh=1000.0)],
         [site(0, energy_price_per_kwh=-0.01), site(0, energy_price_per_kwh=1000.01)]),
    _row("Site.carbon_g_per_kwh", "fleet.sites[0].carbonGPerKwh",
         [site(0, carbon_g_per_kwh=0.0), site(0, carbon_g_per_kwh=10_000.0)],
         [site(0, carbon_g_per_kwh=-1.0), site(0, carbon_g_per_kwh=10_000.5)]),
    _row("PowerDomain.capacity_kw", "fleet.powerDomains[0].capacityKw",
         [pdom(0, capacity_kw=0.0), pdom(0, capacity_kw=1e6)],
         [pdom(0, capacity_kw=-0.1), pdom(0, capacity_kw=1e308)]),
    _row("PowerDomain.modules", "fleet.powerDomains[2].modules",
         [pdom(2, modules=2), pdom(2, modules=64)], [pdom(2, modules=1), pdom(2, modules=65)]),
    _row("Node.gpu_count", "fleet.nodes[3].gpuCount",
         [add("nodes", 0, name="x", gpu_count=1), add("nodes", 0, name="x", gpu_count=1024)],
         [add("nodes", 0, name="x", gpu_count=0), add("nodes", 0, name="x", gpu_count=1025)]),
    _row("Node.host_power_w", "fleet.nodes[0].hostPowerW",
         [node(0, host_power_w=0), node(0, host_power_w=100_000)],
         [node(0, host_power_w=-1), node(0, host_power_w=100_001)]),
    _row("Node.cpu_milli", "fleet.nodes[0].cpuMilli",
         [node(0, cpu_milli=0), node(0, cpu_milli=10_000_000)],
         [node(0, cpu_milli=-1), node(0, cpu_milli=10_000_001)]),
    _row("Node.host_memory_mib", "fleet.nodes[0].hostMemoryMib",
         [node(0, host_memory_mib=0), node(0, host_memory_mib=67_108_864)],
         [node(0, host_memory_mib=-1), node(0, host_memory_mib=67_108_865)]),
    _row("Link.latency_ms", "fleet.links[0].latencyMs",
         [link(0, latency_ms=0.0), link(0, latency_ms=10_000.0)],
         [link(0, latency_ms=-0.1), link(0, latency_ms=10_000.1)]),
    _row("Spread.min_distinct", "workloads[2].spread.minDistinct",
         [_wide(2, spread=d.Spread(d.SpreadLevel.NODE, 1)), _wide(2, spread=d.Spread(d.SpreadLevel.NODE, 100_000))],
         [_wide(2, spread=d.Spread(d.SpreadLevel.NODE, 0)), _wide(2, spread=d.Spread(d.SpreadLevel.NODE, 100_001))]),
    _row("CurrentReplica.gpu_indices", "workloads[0].current[0].gpuIndices[0]",
         [_current((0, 1)), _current((1023, 0))], [_current((-1, 0)), _current((1024, 0))]),
    _row("CurrentReplica.power_cap_w", "workloads[0].current[0].powerCapW",
         [_cap(0), both(_big_h100(), _cap(100_000))], [both(_big_h100(), _cap(-1)), both(_big_h100(), _cap(100_001))]),
    _row("Workload.move_cost", "workloads[0].moveCost",
         [wl(0, move_cost=0), wl(0, move_cost=1_000_000)], [wl(0, move_cost=-1), wl(0, move_cost=1_000_001)]),
    _row("Workload.max_unavailable_count", "workloads[0].maxUnavailableCount",
         [wl(0, max_unavailable_count=0, max_unavailable_pct=None),
          wl(0, max_unavailable_count=100_000, max_unavailable_pct=None)],
         [wl(0, max_unavailable_count=-1, max_unavailable_pct=None),
          wl(0, max_unavailable_count=100_001, max_unavailable_pct=None)]),
    _row("Workload.max_unavailable_pct", "workloads[0].maxUnavailablePct",
         [wl(0, max_unavailable_pct=0), wl(0, max_unavailable_pct=100)],
         [wl(0, max_unavailable_pct=-1), wl(0, max_unavailable_pct=101)]),
    _row("Workload.max_per_node", "workloads[0].maxPerNode",
         [wl(0, max_per_node=0), wl(0, max_per_node=100_000)], [wl(0, max_per_node=-1), wl(0, max_per_node=100_001)]),
    _row("Workload.max_per_power_domain", "workloads[0].maxPerPowerDomain",
         [wl(0, max_per_power_domain=0), wl(0, max_per_power_domain=100_000)],
         [wl(0, max_per_power_domain=-1), wl(0, max_per_power_domain=100_001)]),
    _row("Workload.gpus", "workloads[2].gpus",
         [wl(2, gpus=1), wl(2, gpus=1024)], [wl(2, gpus=-1), wl(2, gpus=1025)]),
    _row("Workload.gpu_milli", "workloads[1].gpuMilli",
         [wl(1, gpu_milli=1), wl(1, gpu_milli=999)], [wl(1, gpu_milli=-1), wl(1, gpu_milli=1000)]),
    _row("Workload.memory_gib", "workloads[0].memoryGib",
         [wl(0, memory_gib=0.0), wl(0, memory_gib=67_108_864.0)],
         [wl(0, memory_gib=-0.5), wl(0, memory_gib=_after(67_108_864, UP))]),
    _row("Workload.min_replicas", "workloads[2].minReplicas",
         [_wide(2, min_replicas=1), _wide(2, min_replicas=100_000)],
         [_wide(2, min_replicas=0), _wide(2, min_replicas=100_001)]),
    _row("Workload.max_replicas", "workloads[2].maxReplicas",
         [wl(2, max_replicas=1), wl(2, max_replicas=100_000)], [wl(2, max_replicas=0), wl(2, max_replicas=100_001)]),
    _row("Workload.survive_site_loss_pct", "workloads[0].surviveSiteLossPct",
         [wl(0, survive_site_loss_pct=0), wl(0, survive_site_loss_pct=100)],
         [wl(0, survive_site_loss_pct=-1), wl(0, survive_site_loss_pct=101)]),
    _row("Workload.backup_minutes", "workloads[0].backupMinutes",
         [wl(0, backup_minutes=0.0), wl(0, backup_minutes=10_080.0)],
         [wl(0, backup_minutes=-1.0), wl(0, backup_minutes=10_080.5)]),
    _row("Workload.max_latency_ms", "workloads[0].maxLatencyMs",
         [wl(0, max_latency_ms=0.0), wl(0, max_latency_ms=10_000.0)],
         [wl(0, max_latency_ms=-1.0), wl(0, max_latency_ms=1e308)]),
    _row("Workload.priority", "workloads[0].priority",
         [wl(0, priority=1), wl(0, priority=10_000)], [wl(0, priority=0), wl(0, priority=10_001)]),
    _row("Workload.min_power_cap_pct", "workloads[0].minPowerCapPct",
         [wl(0, min_power_cap_pct=0), wl(0, min_power_cap_pct=100)],
         [wl(0, min_power_cap_pct=-1), wl(0, min_power_cap_pct=101)]),
    _row("Workload.cpu_milli", "workloads[0].cpuMilli",
         [wl(0, cpu_milli=0), wl(0, cpu_milli=10_000_000)], [wl(0, cpu_milli=-1), wl(0, cpu_milli=10_000_001)]),
    _row("Workload.host_memory_mib", "workloads[0].hostMemoryMib",
         [wl(0, host_memory_mib=0), wl(0, host_memory_mib=67_108_864)],
         [wl(0, host_memory_mib=-1), wl(0, host_memory_mib=67_108_865)]),
    _row("SolveOptions.time_limit_s", "options.timeLimitS",
         [opts(time_limit_s=1e-9), opts(time_limit_s=86_400.0)],
         [opts(time_limit_s=0.0), opts(time_limit_s=86_400.5), opts(time_limit_s=1e308)]),
    _row("SolveOptions.seed", "options.seed",
         [opts(seed=-(2**31)), opts(seed=2**31 - 1)], [opts(seed=-(2**31) - 1), opts(seed=2**31)]),
    _row("SolveOptions.workers", "options.workers",
         [opts(workers=1), opts(workers=256)], [opts(workers=0), opts(workers=257)]),
    _row("SolveOptions.max_moves", "options.maxMoves",
         [opts(max_moves=0), opts(max_moves=1_000_000)], [opts(max_moves=-1), opts(max_moves=1_000_001)]),
    _row("SolveOptions.max_moves_per_site", "options.maxMovesPerSite",
         [opts(max_moves_per_site=0), opts(max_moves_per_site=1_000_000)],
         [opts(max_moves_per_site=-1), opts(max_moves_per_site=1_000_001)]),
    _row("SolveOptions.max_moves_per_power_domain", "options.maxMovesPerPowerDomain",
         [opts(max_moves_per_power_domain=0), opts(max_moves_per_power_domain=1_000_000)],
         [opts(max_moves_per_power_domain=-1), opts(max_moves_per_power_domain=1_000_001)]),
]  # fmt: skip


def test_every_range_has_a_row() -> None:
    assert sorted(row.values[0] for row in ROWS) == sorted(RANGES)


@pytest.mark.parametrize("key,path,inside,outside", ROWS)
def test_ends_pass_and_just_outside_fails(
    key: str, path: str, inside: list[Mutation], outside: list[Mutation]
) -> None:
    for k, m in enumerate(inside):
        assert validate(m(sample_problem())) == [], f"inside value {k} of {key} was refused"
    for k, m in enumerate(outside):
        errors = validate(m(sample_problem()))
        at_path = [e for e in errors if e.path == path]
        assert at_path, f"outside value {k} of {key}: nothing at {path}, got {errors}"
        assert re.search(r"between|positive|negative|out of range", at_path[0].message), at_path[0].message


def test_an_overflowing_capacity_is_refused_before_anything_computes_with_it() -> None:
    """1e308 kW was accepted; usable_power_w (capacity x 1000) then overflowed in the solve."""
    errors = validate(site(0, capacity_kw=1e308)(sample_problem()))
    assert [(e.path, e.message) for e in errors] == [
        ("fleet.sites[0].capacityKw", "must be between 0 and 1000000 kW, got 1e+308")
    ]


# ------------------------------------------------------------------ empty requests


@pytest.mark.parametrize(
    ("m", "paths"),
    [
        pytest.param(lambda p: d.Problem(d.Fleet((), (), (), ()), ()), ["fleet.nodes", "workloads"], id="nothing"),
        pytest.param(lambda p: d.Problem(p.fleet, ()), ["workloads"], id="no workloads"),
        pytest.param(
            lambda p: d.Problem(d.Fleet(p.fleet.gpu_types, p.fleet.sites, p.fleet.power_domains, ()),
                                tuple(w for w in p.workloads if not w.current)),
            ["fleet.nodes"], id="no nodes",
        ),
        pytest.param(lambda p: p, [], id="the sample"),
        pytest.param(lambda p: d.Problem(p.fleet, p.workloads[2:]), [], id="one workload is enough"),
    ],
)  # fmt: skip
def test_a_request_needs_nodes_and_workloads(m: Any, paths: list[str]) -> None:
    problem = m(sample_problem())
    assert [e.path for e in validate_request(problem)] == paths
    assert validate(problem) == []  # the library itself solves an empty part of a partitioned solve
