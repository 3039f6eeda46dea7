"""The ``fleetplace`` command line, run as a real process: exit codes, output, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

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


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetplace.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def fleet_file(tmp_path: Path) -> Path:
    p = tmp_path / "fleet.json"
    p.write_text(json.dumps(FLEET))
    return p


def test_plan_writes_a_plan_that_verify_accepts(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run("plan", str(fleet_file), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Power budgets: sites" in r.stdout
    assert "huge" in r.stdout and "gpu_memory" in r.stdout  # 120 GiB on an 80 GiB GPU: a reason, not an error
    doc = json.loads(out.read_text())
    replicas = [p["workload"] for p in doc["placements"]]
    assert "chat" in replicas and "embed" in replicas
    assert doc["info"]["status"] in ("SOLVE_STATUS_OPTIMAL", "SOLVE_STATUS_FEASIBLE")
    v = run("verify", str(fleet_file), str(out))
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.startswith("VALID")


def test_verify_names_violations_of_a_tampered_plan(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert run("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 0
    doc = json.loads(out.read_text())
    chat = next(p for p in doc["placements"] if p["workload"] == "chat")
    chat["gpuIndices"] = [0, 1, 2, 9]  # GPU 9 does not exist on an 8-GPU node
    doc["budgets"]["sites"][0]["itKw"] += 1.0
    out.write_text(json.dumps(doc))
    v = run("verify", str(fleet_file), str(out))
    assert v.returncode == 1
    assert "INVALID" in v.stdout
    assert "[gpu_count]" in v.stdout and "[budget]" in v.stdout


def test_json_format_is_machine_readable(fleet_file: Path) -> None:
    r = run("plan", str(fleet_file), "--format", "json", "--quiet", "--backend", "pulp")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["info"]["backend"] == "pulp"
    assert {u["workload"] for u in doc["unplaced"]} == {"huge"}


def test_json_stdout_stays_json_when_racks_bind() -> None:
    """datasets/mixed has racks whose power binds: the portfolio's integer bound solves them
    with HiGHS in a child process sharing stdout, which must stay the plan's JSON alone."""
    r = run("plan", str(REPO / "datasets" / "mixed"), "--format", "json", "--quiet", "--time-limit", "5")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["placements"]
    assert float(doc["info"]["bound"]) >= float(doc["objective"]["placedWork"])  # int64: a JSON string


def test_yaml_folder_input(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-fleet.yaml").write_text(yaml.safe_dump({"fleet": FLEET["fleet"]}))
    (folder / "b-workloads.yaml").write_text(yaml.safe_dump({"workloads": FLEET["workloads"]}))
    r = run("plan", str(folder), "--quiet", "--time-limit", "5")
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
    r = run("plan", str(fleet_file), "--out", str(out), "--quiet")
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
    r = run("plan", str(fleet_file), "--quiet")
    assert r.returncode == 2
    for path in ("fleet.sites[0].pue", "fleet.nodes[0].gpuType", "workloads[2].priority"):
        assert path in r.stderr
    assert "3 problems" in r.stderr


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"fleet": {"nodes": [ }')
    r = run("plan", str(bad), "--quiet")
    assert r.returncode == 2 and "bad.json" in r.stderr and "Traceback" not in r.stderr
    r = run("plan", str(tmp_path / "absent.json"), "--quiet")
    assert r.returncode == 2 and "absent.json" in r.stderr
    r = run("plan", str(bad), "--time-limit", "-1")
    assert r.returncode == 2 and "--time-limit" in r.stderr


def test_existing_plan_survives_a_failed_run(fleet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert run("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 0
    before = out.read_text()
    doc = json.loads(fleet_file.read_text())
    doc["fleet"]["nodes"][0]["gpuCount"] = -1
    fleet_file.write_text(json.dumps(doc))
    assert run("plan", str(fleet_file), "--out", str(out), "--quiet").returncode == 2
    assert out.read_text() == before


def test_demo_starts_the_service_places_the_bundled_fleet_and_stops(tmp_path: Path) -> None:
    """The README's first command (`bash run.sh demo` runs `fleetplace demo`), end to end on loopback."""
    out = tmp_path / "plan.json"
    r = run("demo", "--time-limit", "5", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Starting the placement service on 127.0.0.1" in r.stdout
    assert "Power budgets: sites" in r.stdout and "Power budgets: power domains" in r.stdout
    assert r.stdout.rstrip().endswith("Service stopped.")
    v = run("verify", str(REPO / "datasets" / "mixed"), str(out))
    assert v.returncode == 0 and v.stdout.startswith("VALID"), v.stdout + v.stderr
