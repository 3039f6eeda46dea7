"""The Alibaba GPU trace importer, run on the real trace files (outside the repo)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from importers import alibaba
from placement.core.domain import Problem, SiteKind
from placement.core.validate import validate


@pytest.fixture(scope="module")
def default_problem() -> Problem:
    return alibaba.import_trace()


def test_default_trace_dir_is_outside_the_repo() -> None:
    assert alibaba.REPO_ROOT not in alibaba.DEFAULT_TRACE_DIR.parents
    assert (alibaba.DEFAULT_TRACE_DIR / alibaba.NODE_FILE).is_file()


def test_nodes_and_gpus_match_the_published_counts(default_problem: Problem) -> None:
    fleet = default_problem.fleet
    assert len(fleet.nodes) == 1213
    assert sum(n.gpu_count for n in fleet.nodes) == 6212
    gpus_by_type: Counter[str] = Counter()
    for n in fleet.nodes:
        gpus_by_type[n.gpu_type] += n.gpu_count
    assert set(gpus_by_type) == {"G2", "T4", "G3", "P100", "V100M16", "V100M32", "A10"}
    assert gpus_by_type["G2"] == 549 * 8
    assert gpus_by_type["A10"] == 2
    assert [g.name for g in fleet.gpu_types] == ["G2", "G3", "T4", "P100", "V100M16", "V100M32", "A10"]
    assert len(fleet.sites) == 1 and fleet.sites[0].kind is SiteKind.DATACENTER
    assert all(n.cpu_milli > 0 and n.host_memory_mib > 0 for n in fleet.nodes)
    # racks of a few dozen nodes
    per_rack = Counter(n.power_domain for n in fleet.nodes)
    assert max(per_rack.values()) == alibaba.RACK_NODES


def test_tasks_match_the_published_counts(default_problem: Problem) -> None:
    pods = alibaba.read_pods()
    assert len(pods) == 8152
    gpu_pods = [p for p in pods if p.num_gpu > 0]
    assert len(gpu_pods) == 7064
    workloads = default_problem.workloads
    assert len(workloads) == 7064
    assert sum(w.is_fractional for w in workloads) == 3078
    assert Counter(w.gpus for w in workloads if not w.is_fractional) == {1: 3911, 8: 44, 2: 16, 4: 15}
    assert all(w.min_replicas == w.max_replicas == 1 for w in workloads)
    assert Counter(w.priority for w in workloads) == Counter(alibaba.QOS_PRIORITY[p.qos] for p in gpu_pods)
    first = workloads[0]
    assert (first.name, first.gpus, first.cpu_milli, first.host_memory_mib) == (
        "openb-pod-0000",
        1,
        12000,
        16384,
    )
    second = workloads[1]
    assert (second.gpus, second.gpu_milli) == (0, 460)


def test_default_import_validates_and_power_does_not_bind(default_problem: Problem) -> None:
    assert validate(default_problem) == []
    types = {g.name: g for g in default_problem.fleet.gpu_types}
    for dom in default_problem.fleet.power_domains:
        nameplate = sum(
            n.host_power_w + n.gpu_count * types[n.gpu_type].max_power_w
            for n in default_problem.fleet.nodes
            if n.power_domain == dom.name
        )
        assert nameplate < dom.usable_power_w, dom.name


@pytest.mark.parametrize(
    "demand_pct",
    [pytest.param(50, id="half"), pytest.param(130, id="130pct-FGD-comparison")],
)
def test_demand_pct_draws_tasks_until_the_share_is_reached(demand_pct: int) -> None:
    problem = alibaba.import_trace(demand_pct=demand_pct, seed=3)
    requested = sum(w.work_milli for w in problem.workloads) / 1000
    target = 6212 * demand_pct / 100
    last = problem.workloads[-1].work_milli / 1000
    assert target <= requested < target + last + 1e-9  # stops at the first task that reaches it
    names = [w.name for w in problem.workloads]
    assert len(set(names)) == len(names)
    assert validate(problem) == []


def test_demand_pct_is_seeded() -> None:
    a = alibaba.import_trace(demand_pct=30, seed=1)
    b = alibaba.import_trace(demand_pct=30, seed=1)
    c = alibaba.import_trace(demand_pct=30, seed=2)
    assert a == b
    assert [w.name for w in a.workloads] != [w.name for w in c.workloads]


def test_gpu_spec_becomes_allowed_types_and_limit_truncates() -> None:
    problem = alibaba.import_trace(pod_list="gpuspec33", limit=500)
    assert len(problem.workloads) == 500
    constrained = [w for w in problem.workloads if w.allowed_gpu_types]
    assert constrained
    for w in constrained:
        assert list(w.allowed_gpu_types) == sorted(set(w.allowed_gpu_types))
    assert validate(problem) == []


def test_missing_trace_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(alibaba.NODE_FILE)):
        alibaba.import_trace(tmp_path)


@pytest.mark.parametrize(
    ("cpu_milli", "memory_mib", "expected_w"),
    [
        pytest.param(0, 0, 166, id="fixed-part-only"),  # 35 + 112.5 + 19 = 166.5, rounds to even
        pytest.param(96000, 393216, 674, id="G2-node"),  # 166.5 + 96 x 3.625 x 1.05 + 384 x 0.37
        pytest.param(8000, 61440, 219, id="small-P100-node"),  # 166.5 + 30.45 + 22.2
    ],
)
def test_host_power_model(cpu_milli: int, memory_mib: int, expected_w: int) -> None:
    assert alibaba.host_power_w(cpu_milli, memory_mib) == expected_w
