"""The service's configuration: one frozen ``ServerConfig``, from flags or a YAML/JSON file.

Defaults are safe for a laptop: bind loopback only, two concurrent solves, a small
queue, a 16 MiB request limit, no TLS, no auth, no metrics port. A config file uses the
field names below (snake_case); flags given on the command line override the file.

Secrets are never stored here: ``tokens_file`` / ``tokens_env`` name where the bearer
tokens are, and ``server.auth`` reads them; ``repr`` of a config shows paths only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from placement.core.errors import FieldError, InputError
from placement.core.validate import MAX_NODES, MAX_TOTAL_GPUS, MAX_TOTAL_REPLICAS, MAX_WORKLOADS


@dataclass(frozen=True)
class ServerConfig:
    address: str = "127.0.0.1:50051"  # host:port; port 0 picks a free port
    max_concurrent_solves: int = 2  # solver worker processes
    max_queued_solves: int = 4  # solves waiting for a worker; beyond: RESOURCE_EXHAUSTED
    max_message_bytes: int = 16 * 1024 * 1024  # largest request accepted
    max_send_message_bytes: int = 256 * 1024 * 1024  # largest response (a plan grows with the fleet)
    max_time_limit_s: float = 600.0  # cap on a request's time limit (with or without a deadline)
    grace_s: float = 10.0  # on SIGTERM: in-flight solves get this long, then are cancelled
    handler_threads: int = 32  # gRPC handler threads (health, verify, explain, queued solves): a
    # call waits for one before its handler runs, so fewer than the concurrent callers makes them late
    worker_nice: int = 5  # niceness of solver processes, so the server stays responsive
    # fleet limits of one request (checked on the message before any work; beyond: INVALID_ARGUMENT)
    max_gpus: int = 200_000  # sum of gpu_count over the nodes
    max_nodes: int = 50_000
    max_workloads: int = 20_000
    max_replicas: int = 200_000  # sum of max_replicas over the workloads
    # larger requests are converted, checked and verified in worker processes, off the serving thread
    inline_max_gpus: int = 4_096
    inline_max_bytes: int = 256 * 1024
    inline_concurrency: int = 1  # smaller requests read, checked or verified in this process at once
    max_concurrent_checks: int = 1  # worker processes for Verify/Explain of large requests
    max_queued_checks: int = 4  # large Verify/Explain waiting for one; beyond: RESOURCE_EXHAUSTED
    tls_cert: str = ""  # PEM server certificate chain; with tls_key: TLS
    tls_key: str = ""  # PEM private key
    tls_client_ca: str = ""  # PEM CA bundle; set: mutual TLS, clients must present a certificate from it
    tokens_file: str = ""  # file with one bearer token per line ('#' comments); set: auth required
    tokens_env: str = ""  # name of an environment variable holding comma-separated bearer tokens
    auth_health: bool = False  # also require a token for grpc.health.v1 (default: health stays open)
    metrics_port: int = -1  # Prometheus /metrics on this port (0: any free port, -1: off)
    metrics_address: str = "127.0.0.1"
    # plan store for GetPlan/ListPlans/Rebalance: a SQLite path or postgresql:// URL ("": none);
    # left out of repr, since a URL may carry a password
    store: str = dataclasses.field(default="", repr=False)

    def __post_init__(self) -> None:
        errors = self.problems()
        if errors:
            raise InputError(errors)

    def problems(self) -> list[FieldError]:
        out: list[FieldError] = []
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            out.append(FieldError("address", f"expected HOST:PORT, got {self.address!r}"))
        for name in (
            "max_concurrent_solves",
            "handler_threads",
            "max_concurrent_checks",
            "inline_concurrency",
        ):
            if getattr(self, name) < 1:
                out.append(FieldError(name, f"must be at least 1, got {getattr(self, name)}"))
        for name in ("max_queued_solves", "max_queued_checks", "inline_max_gpus", "inline_max_bytes"):
            if getattr(self, name) < 0:
                out.append(FieldError(name, f"must be >= 0, got {getattr(self, name)}"))
        for name, most in (
            ("max_gpus", MAX_TOTAL_GPUS),
            ("max_nodes", MAX_NODES),
            ("max_workloads", MAX_WORKLOADS),
            ("max_replicas", MAX_TOTAL_REPLICAS),
        ):
            if not 1 <= getattr(self, name) <= most:
                out.append(
                    FieldError(
                        name, f"must be in [1, {most:,}] (the library's guard), got {getattr(self, name)}"
                    )
                )
        for name in ("max_message_bytes", "max_send_message_bytes"):
            if getattr(self, name) < 1024:
                out.append(FieldError(name, f"must be at least 1024, got {getattr(self, name)}"))
        for name in ("max_time_limit_s", "grace_s"):
            if not getattr(self, name) > 0:
                out.append(FieldError(name, f"must be > 0, got {getattr(self, name)}"))
        if bool(self.tls_cert) != bool(self.tls_key):
            out.append(FieldError("tls_cert", "tls_cert and tls_key go together"))
        if self.tls_client_ca and not self.tls_cert:
            out.append(FieldError("tls_client_ca", "mutual TLS needs tls_cert and tls_key"))
        for name in ("tls_cert", "tls_key", "tls_client_ca", "tokens_file"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                out.append(FieldError(name, f"no such file: {value}"))
        if not -1 <= self.metrics_port <= 65535:
            out.append(FieldError("metrics_port", f"expected -1 (off) or 0..65535, got {self.metrics_port}"))
        return out

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def auth(self) -> bool:
        return bool(self.tokens_file or self.tokens_env)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)


def load_config(path: str | Path | None = None, **overrides: Any) -> ServerConfig:
    """A config from a YAML/JSON file (optional), then ``overrides`` (``None`` values ignored)."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(ServerConfig)}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as e:
            raise InputError([FieldError(p.name, f"cannot read the config: {e}")]) from e
        if not isinstance(doc, dict):
            raise InputError([FieldError(p.name, "expected a mapping of config fields")])
        errors = [
            FieldError(f"{p.name}: {k}", f"unknown field; known: {', '.join(known)}")
            for k in doc
            if k not in known
        ]
        if errors:
            raise InputError(errors)
        values.update(doc)
    values.update({k: v for k, v in overrides.items() if v is not None})
    errors = []
    for k, v in values.items():
        want = type(known[k].default)
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            values[k] = float(v)
        elif not isinstance(v, want) or (want is int and isinstance(v, bool)):
            errors.append(FieldError(k, f"expected {want.__name__}, got {v!r}"))
    if errors:
        raise InputError(errors)
    return ServerConfig(**values)
