"""The placement state and its rule kernel: each per-replica rule at its boundary with its numbers,
the per-workload rules, and changes that come back exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement.core.candidates import filter_candidates
from placement.core.domain import (
    Fleet,
    Node,
    PowerDomain,
    Problem,
    Site,
    SiteKind,
    Spread,
    SpreadLevel,
    Workload,
)
from placement.core.state import Fit, FleetState, Short, rules_hold, workload_short
from placement.generator import generate
from tests.builders import G_TWO_LEVELS, HOST_W, gpu_g

GPU = gpu_g(memory_gib=24.0, levels=G_TWO_LEVELS)  # type G with 24 GiB and two levels
ON_W = HOST_W + 2 * GPU.idle_power_w  # a 2-GPU node, on, both GPUs idle: 1,140 W
AT_400 = 400 - 70  # one GPU at the lowest level above idle
AT_700 = 700 - 70
SHARED = 700 - 70  # a shared GPU runs uncapped


def state(
    workloads: tuple[Workload, ...],
    rack_w: int = 100_000,
    site_w: int = 100_000,
    nodes: int = 2,
    cpu_milli: int = 0,
    host_memory_mib: int = 0,
) -> FleetState:
    """``nodes`` 2-GPU nodes in one rack of one site."""
    fleet = Fleet(
        gpu_types=(GPU,),
        sites=(Site("s", SiteKind.DATACENTER, "r", site_w / 1000, 1.2, has_generator=True),),
        power_domains=(PowerDomain("r", "s", rack_w / 1000),),
        nodes=tuple(
            Node(f"n{k}", "s", "r", "G", 2, HOST_W, cpu_milli=cpu_milli, host_memory_mib=host_memory_mib)
            for k in range(nodes)
        ),
    )
    return FleetState(filter_candidates(Problem(fleet, workloads), workloads=()))


WHOLE = Workload("w", gpus=1, cpu_milli=1000, host_memory_mib=1000)
TWO = Workload("two", gpus=2)
FRAC = Workload("f", gpus=0, gpu_milli=400, memory_gib=8.0)
LEVELS = (0, 1)

CASES = [
    # (id, workloads, setup: replicas placed first as (workload, node, GPUs, cap), kwargs, assess
    # args (workload, node), expected: Fit(level, GPUs, watts) or Short(rule, requested, available))
    ("an empty node takes a GPU at the top level", (WHOLE,), [], {}, (0, 0), ("fit", 1, (0,), ON_W + AT_700)),
    (
        "rack exactly at the top level's draw: top level",
        (WHOLE,),
        [],
        {"rack_w": ON_W + AT_700},
        (0, 0),
        ("fit", 1, (0,), ON_W + AT_700),
    ),
    (
        "rack 1 W short of the top level: the lowest",
        (WHOLE,),
        [],
        {"rack_w": ON_W + AT_700 - 1},
        (0, 0),
        ("fit", 0, (0,), ON_W + AT_400),
    ),
    (
        "rack exactly at the lowest",
        (WHOLE,),
        [],
        {"rack_w": ON_W + AT_400},
        (0, 0),
        ("fit", 0, (0,), ON_W + AT_400),
    ),
    (
        "rack 1 W short of the lowest: domain_power at the lowest level",
        (WHOLE,),
        [],
        {"rack_w": ON_W + AT_400 - 1},
        (0, 0),
        ("domain_power", ON_W + AT_400, ON_W + AT_400 - 1),
    ),
    (
        "site 1 W short, rack fine: site_power",
        (WHOLE,),
        [],
        {"site_w": ON_W + AT_400 - 1},
        (0, 0),
        ("site_power", ON_W + AT_400, ON_W + AT_400 - 1),
    ),
    (
        "a powered node adds its GPU only",
        (WHOLE, TWO),
        [(0, 0, (0,), 700)],
        {"rack_w": ON_W + 2 * AT_700},
        (0, 0),
        ("fit", 1, (1,), AT_700),
    ),
    (
        "one GPU free for a 2-GPU replica: gpu_count",
        (WHOLE, TWO),
        [(0, 0, (0,), 700)],
        {},
        (1, 0),
        ("gpu_count", 2, 1),
    ),
    (
        "CPU exactly full after it fits",
        (WHOLE,),
        [(0, 0, (0,), 700)],
        {"cpu_milli": 2000, "host_memory_mib": 2000},
        (0, 0),
        ("fit", 1, (1,), AT_700),
    ),
    (
        "1 CPU milli short: host_resources in mCPU",
        (WHOLE,),
        [(0, 0, (0,), 700)],
        {"cpu_milli": 1999},
        (0, 0),
        ("host_resources", 1000, 999),
    ),
    (
        "1 MiB short: host_resources in MiB",
        (WHOLE,),
        [(0, 0, (0,), 700)],
        {"host_memory_mib": 1999},
        (0, 0),
        ("host_resources", 1000, 999),
    ),
    ("a share opens a GPU uncapped", (FRAC,), [], {}, (0, 0), ("fit", -1, (0,), ON_W + SHARED)),
    (
        "a share beside its own kind adds no watts",
        (FRAC,),
        [(0, 0, (0,), 700)],
        {"rack_w": ON_W + SHARED},
        (0, 0),
        ("fit", -1, (0,), 0),
    ),
    (
        "600 milli left: a 400 share fits exactly twice, a third opens GPU 1",
        (FRAC,),
        [(0, 0, (0,), 700), (0, 0, (0,), 700)],
        {},
        (0, 0),
        ("fit", -1, (1,), SHARED),
    ),
    (
        "no free GPU, 200 milli left: gpu_share",
        (FRAC, replace(FRAC, name="g", gpu_milli=600, memory_gib=1.0), WHOLE),
        [(0, 0, (0,), 700), (1, 0, (0,), 700), (2, 0, (1,), 700)],
        {},
        (0, 0),
        ("gpu_share", 400, 0),
    ),
    (
        "milli left but 0.001 GiB short: gpu_memory in GiB",
        (FRAC, replace(FRAC, name="g", gpu_milli=100, memory_gib=16.001), WHOLE),
        [(1, 0, (0,), 700), (2, 0, (1,), 700)],
        {},
        (0, 0),
        ("gpu_memory", 8.0, 7.999),
    ),
]


@pytest.mark.parametrize(
    ("name", "workloads", "setup", "kwargs", "args", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_assess_each_rule_at_its_boundary(
    name: str,
    workloads: tuple[Workload, ...],
    setup: list[tuple[int, int, tuple[int, ...], int]],
    kwargs: dict[str, int],
    args: tuple[int, int],
    expected: tuple[object, ...],
) -> None:
    st = state(workloads, **kwargs)
    for w, n, idx, cap in setup:
        st.add_at(w, n, idx, cap)
    w, n = args
    got = st.assess(w, n, () if workloads[w].is_fractional else LEVELS)
    if expected[0] == "fit":
        assert got == Fit(n, *expected[1:])  # type: ignore[arg-type]
    else:
        assert isinstance(got, Short)
        assert (got.rule, got.node, got.requested, got.available) == (expected[0], n, *expected[1:])
    # fit_at is the same answer without the reason
    fit = st.fit_at(w, n, () if workloads[w].is_fractional else LEVELS, int(workloads[w].is_fractional))
    assert fit == (got if isinstance(got, Fit) else None)


def test_a_named_gpu_is_taken_or_refused_with_its_numbers() -> None:
    st = state((FRAC, WHOLE))
    st.add_at(0, 0, (1,), 700)
    st.add_at(1, 0, (0,), 700)
    assert st.assess(0, 0, (), gpu=1) == Fit(0, -1, (1,), 0)
    short = st.assess(0, 0, (), gpu=0)  # held whole
    assert isinstance(short, Short) and short.rule == "gpu_share"
    assert st.assess(0, 1, (), gpu=1) == Fit(1, -1, (1,), ON_W + SHARED)  # a free GPU, named


def test_level_fits_to_the_watt() -> None:
    st = state((WHOLE,), rack_w=ON_W + AT_400 + (700 - 400))
    st.add_at(0, 0, (0,), 400)
    assert st.level_fits(0, 1)  # exactly the 300 W more the top level draws
    st2 = state((WHOLE,), rack_w=ON_W + AT_400 + (700 - 400) - 1)
    st2.add_at(0, 0, (0,), 400)
    assert not st2.level_fits(0, 1)
    assert st2.within_power(0)


SPREAD_NODES = replace(WHOLE, min_replicas=2, max_replicas=3, spread=Spread(SpreadLevel.NODE, 2))
SURVIVE = replace(WHOLE, min_replicas=2, max_replicas=4, survive_site_loss_pct=50)


@pytest.mark.parametrize(
    ("workload", "nodes", "expected", "spread_and_survival"),
    [
        pytest.param(SPREAD_NODES, [], None, True, id="not placed breaks nothing"),
        pytest.param(SPREAD_NODES, [0], "replicas", False, id="one replica below min_replicas 2"),
        pytest.param(SPREAD_NODES, [0, 0, 1, 1], "replicas", True, id="four above max_replicas 3"),
        pytest.param(SPREAD_NODES, [0, 0], "spread", False, id="two replicas on one node: one distinct node"),
        pytest.param(SPREAD_NODES, [0, 1], None, True, id="exactly two distinct nodes"),
        pytest.param(SURVIVE, [0, 1], "site_survival", False, id="one site: losing it leaves none of the 1"),
    ],
)
def test_workload_rules(
    workload: Workload, nodes: list[int], expected: str | None, spread_and_survival: bool
) -> None:
    st = state((workload,))
    assert workload_short(st.p, workload, nodes) == expected
    assert rules_hold(st.p, workload, nodes) is spread_and_survival


def test_undo_restores_every_counter_and_the_placements_in_order() -> None:
    problem = generate(200, 5, fractional_share=0.5)
    from placement.construct.greedy import greedy

    prepared = filter_candidates(problem)
    st = greedy(prepared)

    def snapshot() -> object:
        return (
            list(st.placements),
            [dict(x) for x in st.whole],
            [{j: (sh.milli, sh.mem_milli_gib, +sh.tenants) for j, sh in x.items()} for x in st.shared],
            list(st.cpu),
            list(st.hmem),
            list(st.replicas),
            list(st.gpu_w),
            {k: v for k, v in st.domain_w.items() if v},
            {k: v for k, v in st.site_w.items() if v},
            list(st.node_free),
            list(st.group_free),
            list(st.cell_free),
            list(st.group_shared),
            list(st.cell_shared),
        )

    before = snapshot()
    mark = st.mark()
    st.remove(3)
    st.remove(0)
    st.pop(2)
    whole = next(i for i, r in enumerate(st.placements) if r[3] == 1000 and r[4] > 0)
    gpu = prepared.nodes[st.placements[whole][1]].gpu
    st.set_level(
        whole, 0 if st.placements[whole][4] != gpu.power_levels[0].power_cap_w else len(gpu.power_levels) - 1
    )
    inner = st.mark()
    st.remove(1)
    st.undo(inner)
    st.remove(5)
    assert snapshot() != before
    st.undo(mark)
    assert snapshot() == before
    st.forget()
    st.pop(1)  # no journal any more: nothing to keep
    assert st._journal is None


def test_admit_takes_new_workloads_after_the_known_ones_only() -> None:
    st = state((WHOLE,))
    st.add_at(0, 0, (0,), 700)
    later = replace(st.p.problem, workloads=(WHOLE, TWO))
    st.admit(later)
    assert st.assess(1, 1, LEVELS) == Fit(1, 1, (0, 1), ON_W + 2 * AT_700)  # the new one, by its index
    assert st.to_placements()[0].workload == "w"
    with pytest.raises(ValueError, match="known workloads"):
        st.admit(replace(later, workloads=(TWO, WHOLE)))
