"""fleetplace bench end to end on a tiny fleet; its measures; the pair MIP baseline; the benchmark profiles."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks import bench, pairmip
from fleetplace.cli import main
from placement.construct.heuristics import first_fit_decreasing, plan_from
from placement.core.domain import (
    Fleet,
    Node,
    PowerDomain,
    Problem,
    Site,
    SiteKind,
    Workload,
)
from placement.generator import PROFILES, generate, profile
from tests.builders import G_TWO_LEVELS, gpu_g


@pytest.mark.slow
def test_tiny_bench_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    code = main(["bench", "--size", "tiny", "--out", str(out), "--time-limit", "3"])
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in records}
    assert methods == set(bench.methods_for("tiny", None))
    assert {"engine", "first_fit_decreasing", "best_fit", "fgd", "pair_mip"} <= methods
    for r in records:
        missing = [f for f in bench.FIELDS if f not in r]
        assert not missing, (r["method"], missing)
        assert r["verified"] is True, (r["method"], r.get("error"), r.get("violations"))
        assert r["peak_rss_mib"] > 10  # a real child process, measured
        assert 0 <= r["allocation_pct"] <= 100
        assert r["objective"] <= r["bound"]
        assert 0.0 <= r["gap"] <= 1.0
    for r in records:  # a 48-GPU fleet has room: every heuristic and the pair model place work
        if r["method"] in (*bench.HEURISTIC_METHODS, "pair_mip"):
            assert r["allocation_pct"] > 50, r["method"]
    for png in ("time_vs_size.png", "quality_vs_time.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    shown = capsys.readouterr()
    for m in methods:
        assert m in shown.out
    assert "tiny seed 0: engine" in shown.err  # progress lines on stderr


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        pytest.param(["--size", "XXL"], "--size", id="unknown-size"),
        pytest.param(["--size", "S", "--time-limit", "0"], "--time-limit", id="zero-time-limit"),
        pytest.param(["--size", "S", "--seeds", "0"], "--seeds", id="no-seeds"),
        pytest.param(["--size", "S", "--address", "ray://x:1"], "--address", id="address-without-ray"),
        pytest.param(["--size", "S", "--methods", "fgd,magic"], "--methods", id="unknown-method"),
    ],
)
def test_bad_bench_flags_exit_2(argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", *argv]) == 2
    assert field in capsys.readouterr().err


def test_methods_flag_runs_only_those(tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert (
        main(["bench", "--size", "tiny", "--out", str(out), "--time-limit", "2", "--methods", "fgd,best_fit"])
        == 0
    )
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["fgd", "best_fit"]  # in the order asked
    assert all(r["verified"] for r in records)


GPU = gpu_g(levels=G_TWO_LEVELS)  # type G with two levels


def _two_racks() -> Problem:
    """Rack a: one 2-GPU node; rack b: one 2-GPU node. Each rack 10 kW usable, the site 100 kW."""
    fleet = Fleet(
        gpu_types=(GPU,),
        sites=(Site("s", SiteKind.DATACENTER, "r", 100.0, 1.2, has_generator=True),),
        power_domains=(PowerDomain("a", "s", 10.0), PowerDomain("b", "s", 10.0)),
        nodes=(Node("a1", "s", "a", "G", 2, 1000), Node("b1", "s", "b", "G", 2, 1000)),
    )
    return Problem(fleet, (Workload("two", gpus=2), Workload("one", gpus=1)))


def test_stranded_power_counts_racks_without_a_free_gpu() -> None:
    """Both workloads placed: rack a full (2 of 2 GPUs), rack b with one GPU free.

    Rack a draws 1000 + 2 * 700 = 2400 W of 10,000: 7.6 kW stranded. Rack b keeps a free
    GPU, so its headroom is not stranded.
    """
    problem = _two_racks()
    plan = plan_from(problem, first_fit_decreasing(problem), "ffd")
    assert {p.workload: p.power_domain for p in plan.placements} == {"two": "a", "one": "b"}
    assert bench.stranded_power_kw(problem, plan) == pytest.approx(7.6)
    assert bench.placed_gpus(plan) == 3
    assert bench.ready_gpus(problem) == 4


def test_demand_bound_is_every_replica_at_full_throughput() -> None:
    assert bench.demand_bound(_two_racks()) == 1 * 2000 * 100 + 1 * 1000 * 100


def test_pair_mip_solves_a_tiny_fleet_and_its_bound_holds() -> None:
    problem = generate(48, 0, **dict(PROFILES["S"].knobs))
    res = pairmip.solve_pairs(problem, time_limit_s=20)
    assert res.status in ("OPTIMAL", "FEASIBLE")
    plan = plan_from(problem, res.placements, "pair_mip")  # verified
    assert res.bound is not None and plan.objective.placed_work <= res.bound + 1e-6


def test_pair_mip_over_its_size_limit_reports_no_solution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pairmip, "MAX_BOOLEANS", 10)
    res = pairmip.solve_pairs(generate(48, 0), time_limit_s=5)
    assert res.status == "NO_SOLUTION" and res.placements == () and "booleans" in res.note


# ------------------------------------------------------------------------- profiles


def test_generate_defaults_are_unchanged_by_the_new_knobs() -> None:
    explicit = generate(
        300,
        1,
        dc_eight_gpu_node_share=0.7,
        eight_gpu_replica_share=0.0,
        replicas_scale=1.0,
        gb200_weight=0.08,
    )
    assert generate(300, 1) == explicit


@pytest.mark.parametrize(
    ("name", "gpus", "nodes", "sites", "replicas"),
    [
        pytest.param("S", 1_000, (100, 200), (5, 15), (200, 400), id="S"),
        pytest.param("M", 8_000, (900, 1_400), (15, 30), (1_800, 2_800), id="M"),
        pytest.param("L", 40_000, (5_000, 6_500), (45, 55), (9_000, 12_500), id="L"),
    ],
)
def test_profiles_have_the_sizes_and_features_asked(
    name: str, gpus: int, nodes: tuple[int, int], sites: tuple[int, int], replicas: tuple[int, int]
) -> None:
    p = profile(name)
    f = p.fleet
    assert sum(n.gpu_count for n in f.nodes) == gpus
    assert nodes[0] <= len(f.nodes) <= nodes[1]
    assert sites[0] <= len(f.sites) <= sites[1]
    assert replicas[0] <= sum(w.max_replicas for w in p.workloads) <= replicas[1]
    types = {g.name: g for g in f.gpu_types}
    nameplate: dict[str, int] = defaultdict(int)
    site_nameplate: dict[str, int] = defaultdict(int)
    for n in f.nodes:
        w = n.host_power_w + n.gpu_count * types[n.gpu_type].max_power_w
        nameplate[n.power_domain] += w
        site_nameplate[n.site] += w
    assert any(nameplate[d.name] > d.usable_power_w for d in f.power_domains)  # binding racks
    assert any(site_nameplate[s.name] > s.usable_power_w for s in f.sites)  # binding sites
    assert len({n.gpu_type for n in f.nodes}) >= 3
    assert any(w.is_fractional for w in p.workloads)
    assert any(w.gpus >= 2 for w in p.workloads)
    assert any(w.spread is not None for w in p.workloads)
    assert any(w.max_latency_ms > 0 for w in p.workloads)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        profile("XXL")
