"""The ``fleetplace`` command line, run as a real process: exit codes, output, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.builders import REPO, run_cli

FLEET = {
    "fleet": {
        "gpuTypes": [
            {
                "name": "H100",
                "memoryGib": 80,
                "maxPowerW": 700,
                "minPowerCapW": 300,
                "idlePowerW": 70,
                "powerLevels": [
                    {"powerCapW": 400, "relativeThroughputPct": 75},
                    {"powerCapW": 700, "relativeThroughputPct": 100},
                ],
                "shareable": True,
            }
        ],
        "sites": [
            {
                "name": "dc1",
                "kind": "SITE_KIND_DATACENTER",
                "region": "eu",
                "capacityKw": 20,
                "pue": 1.2,
                "redundancy": "REDUNDANCY_TWO_N",
                "hasGenerator": True,
                "energyPricePerKwh": 0.1,
                "carbonGPerKwh": 300,
            }
        ],
        "powerDomains": [{"name": "r1", "site": "dc1", "capacityKw": 12}],
        "nodes": [
            {
                "name": f"n{i}",
                "site": "dc1",
                "powerDomain": "r1",
                "gpuType": "H100",
                "gpuCount": 8,
                "hostPowerW": 1500,
            }
            for i in range(2)
        ],
        "regions": ["eu-users"],
        "links": [{"a": "eu-users", "b": "dc1", "latencyMs": 4}],
    },
    "workloads": [
        {"name": "chat", "gpus": 4, "memoryGib": 200, "minReplicas": 1, "maxReplicas": 3, "priority": 10},
        {"name": "embed", "gpuMilli": 250, "memoryGib": 10, "minReplicas": 2, "maxReplicas": 4},
        {"name": "huge", "gpus": 1, "memoryGib": 120, "priority": 5},
    ],
    "options": {"timeLimitS": 10},
}


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    p = tmp_path / "fleet.json"
    p.write_text(json.dumps(FLEET))
    return p


@pytest.mark.slow
def test_plan_writes_a_plan_that_verify_accepts(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run_cli("plan", str(fleet_file), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Power budgets: sites" in r.stdout
    assert "huge" in r.stdout and "gpu_memory" in r.stdout  # 120 GiB on an 80 GiB GPU: a reason, not an error
    doc = json.loads(out.read_text())
    replicas = [p["workload"] for p in doc["placements"]]
    assert "chat" in replicas and "embed" in replicas
    assert doc["info"]["status"] in ("SOLVE_STATUS_OPTIMAL", "SOLVE_STATUS_FEASIBLE")
    v = run_cli("verify", str(fleet_file), str(out))
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.startswith("VALID")


@pytest.mark.slow
def test_verify_names_violations_of_a_tampered_plan(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert run_cli("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 0
    doc = json.loads(out.read_text())
    chat = next(p for p in doc["placements"] if p["workload"] == "chat")
    chat["gpuIndices"] = [0, 1, 2, 9]  # GPU 9 does not exist on an 8-GPU node
    doc["budgets"]["sites"][0]["itKw"] += 1.0
    out.write_text(json.dumps(doc))
    v = run_cli("verify", str(fleet_file), str(out))
    assert v.returncode == 1
    assert "INVALID" in v.stdout
    assert "[gpu_count]" in v.stdout and "[budget]" in v.stdout


def test_json_format_is_machine_readable(fleet_file: Path) -> None:
    r = run_cli("plan", str(fleet_file), "--format", "json", "--quiet", "--backend", "pulp")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["info"]["backend"] == "pulp"
    assert {u["workload"] for u in doc["unplaced"]} == {"huge"}


@pytest.mark.slow
def test_json_stdout_stays_json_when_racks_bind() -> None:
    """datasets/mixed has racks whose power binds: the portfolio's integer bound solves them
    with HiGHS in a child process sharing stdout, which must stay the plan's JSON alone."""
    r = run_cli("plan", str(REPO / "datasets" / "mixed"), "--format", "json", "--quiet", "--time-limit", "5")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["placements"]
    assert float(doc["info"]["bound"]) >= float(doc["objective"]["placedWork"])  # int64: a JSON string


def test_yaml_folder_input(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-fleet.yaml").write_text(yaml.safe_dump({"fleet": FLEET["fleet"]}))
    (folder / "b-workloads.yaml").write_text(yaml.safe_dump({"workloads": FLEET["workloads"]}))
    r = run_cli("plan", str(folder), "--quiet", "--time-limit", "5")
    assert r.returncode == 0, r.stderr
    assert "Placed 2 of 3 workloads" in r.stdout


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["fleet"]["nodes"][1].update(powerDomain="r9"),
            "fleet.nodes[1].powerDomain",
            id="missing-reference",
        ),
        pytest.param(
            lambda d: d["fleet"]["sites"][0].update(capacityKw=-5),
            "fleet.sites[0].capacityKw",
            id="negative-power",
        ),
        pytest.param(lambda d: d["workloads"][0].update(colour="red"), "colour", id="unknown-field"),
        pytest.param(
            lambda d: d["workloads"][1].update(maxReplicas=1), "workloads[1].maxReplicas", id="max-below-min"
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field(fleet_file: Path, tmp_path: Path, mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(fleet_file.read_text())
    mutate(doc)
    fleet_file.write_text(json.dumps(doc))
    out = tmp_path / "plan.json"
    r = run_cli("plan", str(fleet_file), "--out", str(out), "--quiet")
    assert r.returncode == 2
    assert expected in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()  # nothing half-written


def test_every_problem_is_reported_at_once(fleet_file: Path) -> None:
    doc = json.loads(fleet_file.read_text())
    doc["fleet"]["sites"][0]["pue"] = 0.5
    doc["fleet"]["nodes"][0]["gpuType"] = "Z900"
    doc["workloads"][2]["priority"] = 0
    fleet_file.write_text(json.dumps(doc))
    r = run_cli("plan", str(fleet_file), "--quiet")
    assert r.returncode == 2
    for path in ("fleet.sites[0].pue", "fleet.nodes[0].gpuType", "workloads[2].priority"):
        assert path in r.stderr
    assert "3 problems" in r.stderr


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"fleet": {"nodes": [ }')
    r = run_cli("plan", str(bad), "--quiet")
    assert r.returncode == 2 and "bad.json" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("plan", str(tmp_path / "absent.json"), "--quiet")
    assert r.returncode == 2 and "absent.json" in r.stderr
    r = run_cli("plan", str(bad), "--time-limit", "-1")
    assert r.returncode == 2 and "--time-limit" in r.stderr


@pytest.mark.slow
def test_existing_plan_survives_a_failed_run(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert run_cli("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 0
    before = out.read_text()
    doc = json.loads(fleet_file.read_text())
    doc["fleet"]["nodes"][0]["gpuCount"] = -1
    fleet_file.write_text(json.dumps(doc))
    assert run_cli("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 2
    assert out.read_text() == before


@pytest.mark.slow
def test_demo_starts_the_service_places_the_bundled_fleet_and_stops(tmp_path: Path) -> None:
    """The README's first command (`bash run.sh demo` runs `fleetplace demo`), end to end on loopback."""
    out = tmp_path / "plan.json"
    r = run_cli("demo", "--time-limit", "5", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Starting the placement service on 127.0.0.1" in r.stdout
    assert "Power budgets: sites" in r.stdout and "Power budgets: power domains" in r.stdout
    assert r.stdout.rstrip().endswith("Service stopped.")
    v = run_cli("verify", str(REPO / "datasets" / "mixed"), str(out))
    assert v.returncode == 0 and v.stdout.startswith("VALID"), v.stdout + v.stderr


# ------------------------------------------------------- hostile or degenerate input


@pytest.mark.parametrize(
    ("doc", "paths"),
    [
        pytest.param({}, ["fleet.nodes", "workloads"], id="empty document"),
        pytest.param(
            {"fleet": {}, "workloads": []}, ["fleet.nodes", "workloads"], id="empty fleet and workloads"
        ),
        pytest.param({**FLEET, "workloads": []}, ["workloads"], id="no workloads"),
    ],
)
def test_an_empty_request_is_bad_input(tmp_path: Path, doc: dict, paths: list[str]) -> None:  # type: ignore[type-arg]
    """``{}`` used to exit 0: "OPTIMAL ... Every workload is placed"."""
    path = tmp_path / "req.json"
    path.write_text(json.dumps(doc))
    r = run_cli("plan", str(path), "--quiet")
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert [line.split(": ")[1] for line in r.stderr.splitlines()[1:]] == paths


def test_an_overflowing_capacity_is_bad_input_not_an_internal_error(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(FLEET))
    doc["fleet"]["sites"][0]["capacityKw"] = 1e308
    path = tmp_path / "req.json"
    path.write_text(json.dumps(doc))
    r = run_cli("plan", str(path), "--quiet")
    assert r.returncode == 2, r.stderr
    assert "req.json: fleet.sites[0].capacityKw: must be between 0 and 1000000 kW, got 1e+308" in r.stderr


@pytest.mark.parametrize(
    ("bad_nodes", "listed", "more"),
    [
        pytest.param(1, 1, None, id="one"),
        pytest.param(50, 50, None, id="exactly the cap"),
        pytest.param(51, 50, "  ... and 1 more", id="one over the cap"),
        pytest.param(3000, 50, "  ... and 2,950 more", id="thousands"),
    ],
)
def test_the_problem_listing_is_capped(tmp_path: Path, bad_nodes: int, listed: int, more: str | None) -> None:
    """35,000 bad nodes printed 35,002 problems (2.8 MB on stderr)."""
    doc = json.loads(json.dumps(FLEET))
    node = doc["fleet"]["nodes"][0]
    doc["fleet"]["nodes"] = [dict(node, name=f"bad{i}", gpuCount=0) for i in range(bad_nodes)]
    path = tmp_path / "req.json"
    path.write_text(json.dumps(doc))
    r = run_cli("plan", str(path), "--quiet")
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0] == f"fleetplace: invalid input ({bad_nodes:,} problem{'s' if bad_nodes > 1 else ''}):"
    problems = [line for line in lines[1:] if ".gpuCount: " in line]
    assert len(problems) == listed
    assert problems[-1].startswith(f"  req.json: fleet.nodes[{listed - 1}].gpuCount")
    assert (lines[-1] if more else None) == more
    assert len(lines) == 1 + listed + (1 if more else 0)


def test_a_5_mb_name_is_refused_without_being_echoed(tmp_path: Path) -> None:
    """It was accepted and echoed into 15 MB of stdout."""
    doc = json.loads(json.dumps(FLEET))
    doc["workloads"][0]["name"] = "w" * 5_000_000
    path = tmp_path / "req.json"
    path.write_text(json.dumps(doc))
    r = run_cli("plan", str(path), "--quiet")
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr) < 500
    assert "req.json: workloads[0].name: is 5,000,000 characters long; at most 253 are allowed" in r.stderr


@pytest.mark.parametrize(
    ("out", "word"),
    [
        pytest.param("missing/plan.json", "no such folder", id="missing folder"),
        pytest.param("", "is a folder", id="an existing folder"),
        pytest.param("file.txt/plan.json", "not a folder", id="under a file"),
    ],
)
def test_out_is_checked_before_the_solve(fleet_file: Path, tmp_path: Path, out: str, word: str) -> None:
    """``--out`` into a missing folder failed after the whole solve."""
    (tmp_path / "file.txt").write_text("x")
    target = tmp_path / out if out else tmp_path
    r = run_cli("plan", str(fleet_file), "--out", str(target), "--time-limit", "600")
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""  # no report: nothing was solved
    assert "solving" not in r.stderr  # no progress line either
    assert f"--out: {word}" in r.stderr


# ------------------------------------------------------------ output scripts read


def test_json_output_prints_every_field(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run_cli("plan", str(fleet_file), "--format", "json", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == json.loads(out.read_text())
    assert {p["replica"] for p in doc["placements"] if p["workload"] == "embed"} >= {0, 1}
    assert doc["objective"]["moves"] == "0"  # int64 as a string: the proto3 JSON mapping
    nodes = doc["budgets"]["nodes"]
    assert len(nodes) == 2 and all(set(n) >= {"on", "hostW", "gpuW", "itW"} for n in nodes)
    assert all(
        set(g) == {"node", "index", "powerCapW", "usedMilli", "workloads"} for g in doc["budgets"]["gpus"]
    )
    v = run_cli("verify", str(fleet_file), str(out), "--format", "json")
    assert v.returncode == 0, v.stdout + v.stderr
    assert json.loads(v.stdout) == {"violations": [], "valid": True}


def test_the_text_report_gives_units(fleet_file: Path) -> None:
    r = run_cli("plan", str(fleet_file), "--quiet")
    assert r.returncode == 0, r.stderr
    energy = next(line for line in r.stdout.splitlines() if line.startswith("Energy:"))
    assert "per hour at the sites' energy prices" in energy and "kg CO2 per hour" in energy
    objective = r.stdout[r.stdout.index("Objective") :]
    for unit in (
        "GPUs at full throughput",
        "per hour",
        "moved off their current node",
        "powered nodes + shared GPUs in use",
    ):
        assert unit in objective, objective


@pytest.mark.slow
def test_detail_shows_node_budgets_and_replica_power_caps(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    plain = run_cli("plan", str(fleet_file), "--quiet")
    r = run_cli("plan", str(fleet_file), "--quiet", "--detail", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "Node budgets" not in plain.stdout and "Node budgets" in r.stdout
    plan = json.loads(out.read_text())
    nodes = r.stdout[r.stdout.index("Node budgets") : r.stdout.index("Replicas")]
    for n in plan["budgets"]["nodes"]:
        row = next(line.split() for line in nodes.splitlines() if line.startswith(n["node"] + " "))
        assert row[3:6] == [f"{n['hostW']:,}", f"{n['gpuW']:,}", f"{n['itW']:,}"], row
    replicas = r.stdout[r.stdout.index("Replicas") :]
    for p in plan["placements"]:
        name = f"{p['workload']}#{p['replica']}"
        row = next(line.split() for line in replicas.splitlines() if line.startswith(name + " "))
        assert row[1] == p["node"] and f"{p['powerCapW']:,}" in row, row
