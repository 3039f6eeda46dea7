"""Input validation: table-driven, one family of fields at a time.

Each case breaks one thing in a valid instance and asserts the exact field path and a key
word of the message; the boundary cases assert that the value just inside the limit passes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from placement.core import domain as d
from placement.core.errors import FieldError
from placement.core.validate import validate
from tests.builders import sample_problem
from tests.mutations import Mutation, add, both, fleet, gpu, levels, link, node, opts, pdom, site, wl
from wire.gen.placement.v1 import placement_pb2 as pb

INF = math.inf
NAN = math.nan


# ----------------------------------------------------------------------- helpers


def errors_of(m: Mutation) -> list[FieldError]:
    return validate(m(sample_problem()))


def resolves(path: str) -> bool:
    """The path names real fields of PlaceRequest by their JSON names."""
    desc: Any = pb.PlaceRequest.DESCRIPTOR
    for part in path.split("."):
        name = re.sub(r"\[\d+\]$", "", part)
        fields = {f.json_name: f for f in desc.fields}
        if name not in fields:
            return False
        desc = fields[name].message_type
        if desc is None:
            return True
    return True


def check(m: Mutation, path: str, word: str) -> None:
    errs = errors_of(m)
    assert [e.path for e in errs] == [path], errs
    assert word.lower() in errs[0].message.lower(), errs[0].message
    assert resolves(path), path


def case(name: str, m: Mutation, path: str, word: str) -> Any:
    return pytest.param(m, path, word, id=name)


def test_the_sample_is_valid() -> None:
    assert validate(sample_problem()) == []


# ------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("empty GPU type name", add("gpu_types", 0, name=""), "fleet.gpuTypes[2].name", "empty"),
        case("blank site name", add("sites", 0, name="  "), "fleet.sites[2].name", "empty"),
        case("duplicate GPU type", add("gpu_types", 0), "fleet.gpuTypes[2].name", "duplicate"),
        case("duplicate site", add("sites", 1, name="s1"), "fleet.sites[2].name", "duplicate"),
        case("region named like a site", fleet(regions=("eu-users", "s2")), "fleet.regions[1]", "duplicate"),
        case("duplicate region", fleet(regions=("eu-users", "eu-users")), "fleet.regions[1]", "duplicate"),
        case("duplicate power domain", both(pdom(1, name="s1-a"), node(1, power_domain="s1-a")),
             "fleet.powerDomains[1].name", "duplicate"),
        case("duplicate node", add("nodes", 0), "fleet.nodes[3].name", "duplicate"),
        case("empty workload name", wl(2, name=""), "workloads[2].name", "empty"),
        case("duplicate workload", wl(2, name="llm"), "workloads[2].name", "duplicate"),
    ],
)  # fmt: skip
def test_names(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# -------------------------------------------------------------------- references


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("node site", node(0, site="nowhere"), "fleet.nodes[0].site", "unknown site"),
        case("node power domain", node(0, power_domain="nope"), "fleet.nodes[0].powerDomain", "unknown"),
        case("power domain of another site", node(2, power_domain="s1-a"), "fleet.nodes[2].powerDomain", "belongs"),
        case("node GPU type", node(1, gpu_type="B200"), "fleet.nodes[1].gpuType", "unknown GPU type"),
        case("power domain site", pdom(1, site="s9"), "fleet.powerDomains[1].site", "unknown site"),
        case("allowed GPU type", wl(0, allowed_gpu_types=("H100", "A100")), "workloads[0].allowedGpuTypes[1]",
             "unknown GPU type"),
        case("user region not a region", wl(1, user_region="mars"), "workloads[1].userRegion", "unknown"),
        case("user region is a site", wl(1, user_region="s1"), "workloads[1].userRegion", "fleet.regions"),
        case("link endpoint", link(1, b="s7"), "fleet.links[1].b", "unknown endpoint"),
        case("link to itself", link(1, a="s2"), "fleet.links[1].b", "itself"),
        case("current node", wl(1, current=(d.CurrentReplica("n9", (0,)),)), "workloads[1].current[0].node",
             "unknown node"),
        case("current index at gpu_count", wl(1, current=(d.CurrentReplica("n3", (4,)),)),
             "workloads[1].current[0].gpuIndices[0]", "out of range"),
        case("current index negative", wl(1, current=(d.CurrentReplica("n3", (-1,)),)),
             "workloads[1].current[0].gpuIndices[0]", "out of range"),
        case("current GPUs fewer than gpus", wl(0, current=(d.CurrentReplica("n1", (0,)),)),
             "workloads[0].current[0].gpuIndices", "2 GPUs"),
        case("fractional replica holds two GPUs", wl(1, current=(d.CurrentReplica("n3", (0, 1)),)),
             "workloads[1].current[0].gpuIndices", "1 GPU"),
        case("current index repeated", wl(0, current=(d.CurrentReplica("n1", (3, 3)),)),
             "workloads[0].current[0].gpuIndices[1]", "duplicate"),
        case("more current replicas than max",
             wl(0, current=tuple(d.CurrentReplica("n1", (2 * k, 2 * k + 1)) for k in range(4)) * 2),
             "workloads[0].current", "exceed max replicas"),
    ],
)  # fmt: skip
def test_references(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# ----------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("site capacity negative", site(0, capacity_kw=-1.0), "fleet.sites[0].capacityKw", "negative"),
        case("site capacity NaN", site(0, capacity_kw=NAN), "fleet.sites[0].capacityKw", "finite"),
        case("pue below 1", site(1, pue=0.99), "fleet.sites[1].pue", "between 1"),
        case("pue above 10", site(1, pue=10.01), "fleet.sites[1].pue", "10"),
        case("price above 1000", site(0, energy_price_per_kwh=1000.5), "fleet.sites[0].energyPricePerKwh", "between 0 and 1000 per kWh"),
        case("carbon above 10 kg", site(0, carbon_g_per_kwh=1e5), "fleet.sites[0].carbonGPerKwh", "between 0 and 10000 g CO2"),
        case("pue infinite", site(1, pue=INF), "fleet.sites[1].pue", "finite"),
        case("N_PLUS_1 with one module", site(0, modules=1), "fleet.sites[0].modules", "between 2"),
        case("N_PLUS_1 power domain with 65 modules", pdom(2, modules=65), "fleet.powerDomains[2].modules", "64"),
        case("battery negative", site(1, battery_minutes=-5.0), "fleet.sites[1].batteryMinutes", "negative"),
        case("price infinite", site(0, energy_price_per_kwh=INF), "fleet.sites[0].energyPricePerKwh", "finite"),
        case("carbon negative", site(0, carbon_g_per_kwh=-0.1), "fleet.sites[0].carbonGPerKwh", "negative"),
        case("power domain capacity negative", pdom(0, capacity_kw=-0.5), "fleet.powerDomains[0].capacityKw",
             "negative"),
        case("latency negative", link(0, latency_ms=-1.0), "fleet.links[0].latencyMs", "negative"),
        case("latency NaN", link(0, latency_ms=NAN), "fleet.links[0].latencyMs", "finite"),
        case("host power negative", node(0, host_power_w=-1), "fleet.nodes[0].hostPowerW", "negative"),
        case("node cpu negative", node(0, cpu_milli=-1), "fleet.nodes[0].cpuMilli", "negative"),
        case("node host memory negative", node(2, host_memory_mib=-1), "fleet.nodes[2].hostMemoryMib", "negative"),
        case("workload memory negative", wl(0, memory_gib=-1.0), "workloads[0].memoryGib", "negative"),
        case("workload memory infinite", wl(0, memory_gib=INF), "workloads[0].memoryGib", "finite"),
        case("workload memory absurd", wl(0, memory_gib=2.0**53), "workloads[0].memoryGib", "between 0 and 67108864 GiB"),
        case("backup negative", wl(0, backup_minutes=-1.0), "workloads[0].backupMinutes", "negative"),
        case("survive pct 101", wl(0, survive_site_loss_pct=101), "workloads[0].surviveSiteLossPct", "100"),
        case("min power cap pct -1", wl(0, min_power_cap_pct=-1), "workloads[0].minPowerCapPct", "negative"),
        case("workload cpu negative", wl(0, cpu_milli=-1), "workloads[0].cpuMilli", "negative"),
        case("not a number", node(0, host_power_w=None), "fleet.nodes[0].hostPowerW", "number"),
    ],
)  # fmt: skip
def test_numbers(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# ---------------------------------------------------------------------- GPU type


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("no power levels", gpu(0, power_levels=()), "fleet.gpuTypes[0].powerLevels", "empty"),
        case("levels not ascending", levels(0, (500, 80), (350, 80), (700, 100)),
             "fleet.gpuTypes[0].powerLevels[1].powerCapW", "ascending"),
        case("repeated level", levels(0, (350, 70), (350, 70), (700, 100)),
             "fleet.gpuTypes[0].powerLevels[1].powerCapW", "ascending"),
        case("level 1 W below min cap", levels(0, (199, 50), (700, 100)),
             "fleet.gpuTypes[0].powerLevels[0].powerCapW", "outside"),
        case("last level not max power", levels(0, (350, 70), (600, 100)),
             "fleet.gpuTypes[0].powerLevels[1].powerCapW", "last power level"),
        case("throughput 0", levels(0, (350, 0), (700, 100)),
             "fleet.gpuTypes[0].powerLevels[0].relativeThroughputPct", "between 1"),
        case("throughput 101", levels(0, (350, 70), (700, 101)),
             "fleet.gpuTypes[0].powerLevels[1].relativeThroughputPct", "100"),
        case("throughput falls", levels(0, (350, 90), (500, 80), (700, 100)),
             "fleet.gpuTypes[0].powerLevels[1].relativeThroughputPct", "non-decreasing"),
        case("idle 1 W above min cap", gpu(0, idle_power_w=201), "fleet.gpuTypes[0].idlePowerW", "idle"),
        case("min cap above max", both(gpu(1, min_power_cap_w=73)), "fleet.gpuTypes[1].minPowerCapW", "exceeds"),
        case("max power zero", both(gpu(1, max_power_w=0, min_power_cap_w=0, idle_power_w=0),
                                    levels(1, (0, 100))), "fleet.gpuTypes[1].maxPowerW", "between 1"),
        case("memory zero", gpu(0, memory_gib=0.0), "fleet.gpuTypes[0].memoryGib", "positive"),
        case("memory absurd (2**53 GiB overflowed the model)", gpu(0, memory_gib=2.0**53), "fleet.gpuTypes[0].memoryGib", "at most"),
        case("too many levels", levels(0, *[(200 + k, 100) for k in range(64)], (700, 100)),
             "fleet.gpuTypes[0].powerLevels", "too many"),
    ],
)  # fmt: skip
def test_gpu_types(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# ---------------------------------------------------------------- nodes and sizes


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("no GPUs", node(0, gpu_count=0), "fleet.nodes[0].gpuCount", "between 1"),
        case("1025 GPUs", node(0, gpu_count=1025), "fleet.nodes[0].gpuCount", "1024"),
        case("max replicas 100001", wl(2, max_replicas=100_001), "workloads[2].maxReplicas", "100000"),
        case("priority over the cap", wl(2, priority=10_001), "workloads[2].priority", "10000"),
        case("workers over the cap", opts(workers=257), "options.workers", "256"),
        case("gpus per replica over the cap", wl(2, gpus=1025), "workloads[2].gpus", "1024"),
    ],
)  # fmt: skip
def test_size_guards(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


def _huge_site(metric: d.EnergyMetric) -> d.Problem:
    """Five 1,024-GPU nodes of 100 kW boards at site 0, at the price, carbon and PUE caps."""
    p = both(
        gpu(0, max_power_w=100_000, power_levels=(d.PowerLevel(100_000, 100),)),
        site(0, pue=10.0, energy_price_per_kwh=1000.0, carbon_g_per_kwh=10_000.0),
        node(0, gpu_count=1024),
        *(add("nodes", 0, name=f"big{k}") for k in range(4)),
        opts(energy_metric=metric),
    )(sample_problem())
    assert (
        p.fleet.nodes[0].gpu_type == p.fleet.gpu_types[0].name
        and p.fleet.nodes[0].site == p.fleet.sites[0].name
    )
    return p


def test_energy_objective_guard() -> None:
    # 5 x 1,024 x 100 kW at 1e10 n$/h per W is about 5e18, over the 2**62 the integer objective allows
    errs = validate(_huge_site(d.EnergyMetric.COST))
    assert [e.path for e in errs] == ["fleet.sites[0].energyPricePerKwh"]
    assert "too large" in errs[0].message
    # the same fleet measured in carbon (1e8 ug/h per W) fits
    assert validate(_huge_site(d.EnergyMetric.CARBON)) == []


def test_total_replicas_guard() -> None:
    many = tuple(d.Workload(name=f"w{i}", max_replicas=100_000) for i in range(11))
    errs = validate(dataclasses.replace(sample_problem(), workloads=many))
    assert [(e.path, "total" in e.message) for e in errs] == [("workloads", True)]


# --------------------------------------------------------------------- workloads


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("both gpus and gpu_milli", wl(2, gpus=1, gpu_milli=500), "workloads[2].gpuMilli", "exactly one"),
        case("neither gpus nor gpu_milli", wl(2, gpus=0, gpu_milli=0), "workloads[2].gpus", "exactly one"),
        case("gpu_milli 1000", wl(1, gpu_milli=1000), "workloads[1].gpuMilli", "999"),
        case("gpu_milli negative", wl(1, gpu_milli=-5), "workloads[1].gpuMilli", "between 1"),
        case("gpus negative", wl(2, gpus=-1), "workloads[2].gpus", "between 1"),
        case("min replicas 0", wl(2, min_replicas=0, max_replicas=1), "workloads[2].minReplicas", "between 1"),
        case("max below min", wl(0, min_replicas=3, max_replicas=2), "workloads[0].maxReplicas", "below"),
        case("priority 0", wl(2, priority=0), "workloads[2].priority", "between 1"),
        case("spread min distinct 0", wl(1, spread=d.Spread(d.SpreadLevel.NODE, 0)),
             "workloads[1].spread.minDistinct", "between 1"),
        case("spread wider than max replicas", wl(0, spread=d.Spread(d.SpreadLevel.NODE, 5)),
             "workloads[0].spread.minDistinct", "never"),
        case("latency without a region", wl(0, user_region=""), "workloads[0].userRegion", "needs a user region"),
        case("latency from an unlinked region", both(fleet(regions=("eu-users", "apac")), wl(0, user_region="apac")),
             "workloads[0].userRegion", "no link"),
        case("latency negative", wl(2, max_latency_ms=-1.0), "workloads[2].maxLatencyMs", "negative"),
    ],
)  # fmt: skip
def test_workloads(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# ----------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("time limit 0", opts(time_limit_s=0.0), "options.timeLimitS", "positive"),
        case("time limit NaN", opts(time_limit_s=NAN), "options.timeLimitS", "finite"),
        case("time limit infinite", opts(time_limit_s=INF), "options.timeLimitS", "finite"),
        case("workers 0", opts(workers=0), "options.workers", "between 1"),
        case("seed beyond 32 bits", opts(seed=2**31), "options.seed", "between"),
    ],
)  # fmt: skip
def test_options(m: Mutation, path: str, word: str) -> None:
    check(m, path, word)


# ------------------------------------------------------------ boundaries that pass


@pytest.mark.parametrize(
    "m",
    [
        pytest.param(site(1, pue=1.0), id="pue exactly 1"),
        pytest.param(site(1, pue=10.0, energy_price_per_kwh=1000.0, carbon_g_per_kwh=10_000.0), id="site at the caps"),
        pytest.param(site(0, modules=2), id="N_PLUS_1 with 2 modules"),
        pytest.param(site(1, modules=1), id="modules ignored for TWO_N"),
        pytest.param(site(0, capacity_kw=0.0), id="zero capacity"),
        pytest.param(link(0, latency_ms=0.0), id="zero latency"),
        pytest.param(node(0, gpu_count=1024), id="1024 GPUs"),
        pytest.param(wl(1, gpu_milli=999), id="gpu_milli 999"),
        pytest.param(wl(1, gpu_milli=1), id="gpu_milli 1"),
        pytest.param(wl(1, current=(d.CurrentReplica("n3", (3,)),)), id="current index gpu_count - 1"),
        pytest.param(wl(0, max_replicas=2), id="max replicas equal to min"),
        pytest.param(wl(2, max_replicas=100_000), id="max replicas at the cap"),
        pytest.param(wl(0, spread=d.Spread(d.SpreadLevel.NODE, 4)), id="spread as wide as max replicas"),
        pytest.param(wl(0, survive_site_loss_pct=100, min_power_cap_pct=100), id="percentages at 100"),
        pytest.param(levels(0, (200, 50), (700, 100)), id="level exactly at min cap"),
        pytest.param(levels(0, (350, 100), (700, 100)), id="throughput flat"),
        pytest.param(gpu(0, idle_power_w=200), id="idle equal to min cap"),
        pytest.param(both(fleet(regions=("eu-users", "apac")), wl(2, user_region="apac")),
                     id="unlinked region without a latency rule"),
        pytest.param(opts(workers=1, time_limit_s=0.001, seed=-(2**31)), id="smallest options"),
    ],
)  # fmt: skip
def test_boundaries_that_pass(m: Mutation) -> None:
    assert errors_of(m) == []


# ------------------------------------------------------------------ all at once


def test_every_problem_is_reported_at_once() -> None:
    m = both(
        node(0, gpu_count=0, site="nowhere"),
        site(1, pue=0.5),
        gpu(1, power_levels=()),
        wl(0, min_replicas=3, max_replicas=2),
        wl(2, name="llm"),
        opts(workers=0),
    )
    paths = [e.path for e in errors_of(m)]
    assert sorted(paths) == sorted(
        [
            "fleet.nodes[0].site",
            "fleet.nodes[0].gpuCount",
            "fleet.sites[1].pue",
            "fleet.gpuTypes[1].powerLevels",
            "workloads[0].maxReplicas",
            "workloads[2].name",
            "options.workers",
        ]
    )


def test_validate_never_raises_on_an_empty_or_odd_problem() -> None:
    empty = d.Problem(fleet=d.Fleet((), (), (), ()), workloads=())
    assert validate(empty) == []
    odd = d.Problem(
        fleet=d.Fleet((), (), (), (d.Node("n", "s", "p", "g", None, 0),)),  # type: ignore[arg-type]
        workloads=(d.Workload("w", current=(d.CurrentReplica("n", (0,)),)),),
    )
    paths = {e.path for e in validate(odd)}
    assert "fleet.nodes[0].gpuCount" in paths


# ------------------------------------------------------------------ name lengths

LONG = "x" * 254
HUGE = "y" * 5_000_000


@pytest.mark.parametrize(
    "m,path,word",
    [
        case("GPU type name", gpu(0, name=LONG), "fleet.gpuTypes[0].name", ""),
        case("site region", site(1, region=LONG), "fleet.sites[1].region", ""),
        case("power domain site", pdom(1, site=LONG), "fleet.powerDomains[1].site", ""),
        case("node power domain", node(2, power_domain=LONG), "fleet.nodes[2].powerDomain", ""),
        case("region", fleet(regions=(LONG,)), "fleet.regions[0]", ""),
        case("link end", link(1, b=LONG), "fleet.links[1].b", ""),
        case("workload name (5 MB)", wl(2, name=HUGE), "workloads[2].name", ""),
        case("allowed GPU type", wl(0, allowed_gpu_types=(LONG,)), "workloads[0].allowedGpuTypes[0]", ""),
        case("current node", wl(1, current=(d.CurrentReplica(HUGE, (0,)),)), "workloads[1].current[0].node", ""),
    ],
)  # fmt: skip
def test_names_longer_than_253_characters_are_refused_once(m: Mutation, path: str, word: str) -> None:
    errs = errors_of(m)
    at_path = [e for e in errs if e.path == path]
    assert len(at_path) == 1, errs  # "unknown node 'yyy...'" is not added to the length problem
    assert "at most 253" in at_path[0].message
    assert all(len(e.message) < 300 for e in errs), "a message echoes a long name"


def test_a_name_of_253_characters_passes() -> None:
    name = "n" * 253
    assert (
        errors_of(
            both(
                node(0, name=name),
                wl(0, current=(d.CurrentReplica(name, (0, 1)), d.CurrentReplica("n2", (2, 3)))),
            )
        )
        == []
    )


def test_messages_quote_a_long_name_cut_short() -> None:
    errs = errors_of(both(wl(0, allowed_gpu_types=("Z" * 200,)), add("gpu_types", 0, name="w" * 200), wl(2, name="w" * 200),
                          wl(1, name="w" * 200)))  # fmt: skip
    unknown = next(e for e in errs if e.path == "workloads[0].allowedGpuTypes[0]")
    assert unknown.message.startswith("unknown GPU type 'ZZZ") and "(200 characters)" in unknown.message
    duplicate = next(e for e in errs if e.path == "workloads[2].name")
    assert "duplicate" in duplicate.message and len(duplicate.message) < 150
