"""The deployment files: the container image definition, the Kubernetes manifests, the systemd units.

* Dockerfile: every path it copies exists, and a package built from exactly those paths (the
  image's build context) carries the plan store's migrations; its command is a real CLI command.
* Kubernetes: every document validates against the upstream Kubernetes schemas in strict mode
  (``kubernetes-validate``: unknown fields and wrong types are errors), and holds what the nightly
  job needs (``concurrencyPolicy: Forbid``, a starting deadline, a job deadline longer than the
  solve and the wait, the store's URL from a Secret, probes on the gRPC health service by the
  service's name); container arguments parse with fleetplace's own parser, the server config with
  its own loader.
* systemd: ``systemd-analyze verify`` accepts the units without a word (a warning fails), and the
  commands parse with fleetplace's parser.
Each check is also shown to catch a broken copy.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from fleetplace.cli import build_parser
from server.app import SERVICE_NAME
from server.config import load_config
from tests.builders import REPO

DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30.0"
UNITS = ["fleetplace.service", "fleetplace-rebalance.service", "fleetplace-rebalance.timer"]


def _parses(args: list[str]) -> Any:
    """The CLI's namespace for ``args`` (argparse exits 2 on an unknown flag: turned into a failure)."""
    try:
        return build_parser().parse_args(args)
    except SystemExit as e:
        raise AssertionError(f"fleetplace does not take {args}") from e


# ------------------------------------------------------------------------------ Dockerfile


def _dockerfile() -> list[str]:
    return (DEPLOY / "Dockerfile").read_text().splitlines()


def _copied() -> list[str]:
    sources = []
    for line in _dockerfile():
        if line.startswith("COPY "):
            sources.extend(line.split()[1:-1])
    return sources


def test_the_image_copies_what_the_package_needs() -> None:
    sources = _copied()
    assert all((REPO / s).exists() for s in sources), sources
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    assert set(packages) <= set(sources)
    assert {"pyproject.toml", project["project"]["readme"]} <= set(sources)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not set(ignored) & set(sources)


def test_a_package_built_from_the_image_context_carries_the_migrations(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for source in _copied():
        src = REPO / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(src, context / source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=context,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("fleetplace-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = sorted((REPO / "fleetplace/store/migrations").rglob("*.py"))
    wanted = {str(p.relative_to(REPO)) for p in migrations} | {"fleetplace/store/migrations/script.py.mako"}
    assert wanted <= names, sorted(wanted - names)
    assert "wire/gen/placement/v1/placement_pb2.py" in names


def test_the_image_runs_a_real_command() -> None:
    text = "\n".join(_dockerfile())
    entry = yaml.safe_load(re.search(r"^ENTRYPOINT (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    command = yaml.safe_load(re.search(r"^CMD (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["fleetplace"]
    args = _parses(command)
    assert args.command == "serve" and args.address.startswith("0.0.0.0:")


# ------------------------------------------------------------------------------ Kubernetes


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]


def _all_documents() -> list[dict[str, Any]]:
    return [d for f in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for d in _documents(f.name)]


@pytest.mark.parametrize("doc", _all_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifests_validate_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "name, break_it",
    [
        ("a misspelt field", lambda c: c["spec"].update(concurencyPolicy="Forbid")),
        ("a number as text", lambda c: c["spec"].update(startingDeadlineSeconds="600")),
        ("a container without its name", lambda c: _container(c).pop("name")),
    ],
)
def test_the_schema_check_catches_a_broken_manifest(name: str, break_it: Any) -> None:
    (cronjob,) = _documents("cronjob.yaml")
    break_it(cronjob)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, K8S_VERSION, strict=True)


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    spec = (
        doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if doc["kind"] == "CronJob"
        else doc["spec"]["template"]["spec"]
    )
    (container,) = spec["containers"]
    return container  # type: ignore[no-any-return]


def _store_from_secret(container: dict[str, Any]) -> bool:
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env.get("FLEETPLACE_STORE", {}).get("valueFrom", {}).get("secretKeyRef", {})
    return bool(ref.get("name")) and bool(ref.get("key"))


def test_the_nightly_cronjob() -> None:
    (cronjob,) = _documents("cronjob.yaml")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    container = _container(cronjob)
    args = _parses(container["args"])
    assert args.command == "rebalance" and args.requested_by == "cron" and not args.dry_run
    # the deadline covers the solve and the wait for another rebalance, with room to start and record
    assert job["activeDeadlineSeconds"] >= args.time_limit + args.wait + 300
    assert job["backoffLimit"] == 0  # a refused plan is an answer to alert on, not to retry
    assert _store_from_secret(container)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert args.input in mounts  # the fleet comes from a mounted volume


def test_the_service_deployment_probes_the_grpc_health_service() -> None:
    docs = {d["kind"]: d for d in _documents("service.yaml")}
    container = _container(docs["Deployment"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"], probe
    assert container["readinessProbe"]["grpc"]["service"] == SERVICE_NAME
    assert container["startupProbe"]["grpc"]["service"] == SERVICE_NAME
    assert _store_from_secret(container)
    args = _parses(container["args"])
    assert args.command == "serve"
    # the server config the ConfigMap mounts loads, listens where the probes look, and serves metrics there
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    (name,) = docs["ConfigMap"]["data"]
    assert args.config == f"{mount['mountPath']}/{name}"
    config_text = docs["ConfigMap"]["data"][name]
    config = yaml.safe_load(config_text)
    assert load_config(None, **config).address == f"0.0.0.0:{ports['grpc']}"
    assert config["metrics_port"] == ports["metrics"]
    grace = load_config(None, **config).grace_s
    assert docs["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace
    service_ports = {p["name"]: p["targetPort"] for p in docs["Service"]["spec"]["ports"]}
    assert service_ports == {"grpc": "grpc", "metrics": "metrics"}


def test_both_use_one_image() -> None:
    images = {_container(d)["image"] for d in _all_documents() if d["kind"] in ("Deployment", "CronJob")}
    assert len(images) == 1


# --------------------------------------------------------------------------------- systemd


def _units_for_verify(tmp_path: Path, units: dict[str, str]) -> list[str]:
    """The units in a folder, the fleetplace binary pointed at this environment's (verify checks it exists)."""
    binary = Path(sys.executable).parent / "fleetplace"
    assert binary.exists()
    paths = []
    for name, text in units.items():
        path = tmp_path / name
        path.write_text(text.replace("/usr/local/bin/fleetplace", str(binary)))
        paths.append(str(path))
    return paths


def _verify(paths: list[str]) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: .ci/run installs systemd"
    return subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=120)


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = {name: (DEPLOY / "systemd" / name).read_text() for name in UNITS}
    done = _verify(_units_for_verify(tmp_path, units))
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr


@pytest.mark.parametrize(
    "name, change",
    [
        ("an unknown key", ("TimeoutStartSec=30min", "TimeoutStartSecs=30min")),
        ("a missing binary", ("/usr/local/bin/fleetplace", "/usr/local/bin/fleetplace-nope")),
        ("a bad calendar", ("OnCalendar=*-*-* 02:00:00", "OnCalendar=nightly at two")),
    ],
)
def test_systemd_verify_catches_a_broken_unit(tmp_path: Path, name: str, change: tuple[str, str]) -> None:
    units = {n: (DEPLOY / "systemd" / n).read_text() for n in UNITS}
    old, new = change
    units = {n: t.replace(old, new) for n, t in units.items()}
    assert any(new in t for t in units.values()), name
    done = _verify(_units_for_verify(tmp_path, units))
    assert done.returncode != 0 or done.stderr != "", name


def test_systemd_commands_are_real_commands() -> None:
    for name in UNITS[:2]:
        text = (DEPLOY / "systemd" / name).read_text()
        (line,) = [x for x in text.splitlines() if x.startswith("ExecStart=")]
        binary, *args = shlex.split(line.removeprefix("ExecStart="))
        assert binary == "/usr/local/bin/fleetplace"
        parsed = _parses(args)
        if name == "fleetplace-rebalance.service":
            assert parsed.command == "rebalance" and parsed.requested_by == "cron"
            timeout = re.search(r"^TimeoutStartSec=(\d+)min$", text, re.M)
            assert timeout is not None and int(timeout.group(1)) * 60 >= parsed.time_limit + parsed.wait + 300
        else:
            assert parsed.command == "serve"
    timer = (DEPLOY / "systemd" / "fleetplace-rebalance.timer").read_text()
    assert "Persistent=true" in timer
