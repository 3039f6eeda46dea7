"""What a request costs, read cheaply from the message before any heavy work.

A request of 32 KB can describe 1,000,000 GPUs (a thousand nodes of a thousand GPUs each):
its bytes pass every size guard, but its plan, power budgets and verification are per GPU
(measured: 3.4 s and 850 MB for the budgets of an empty plan of 1,000,000 GPUs). So the
service counts first, from the message alone: the repeated fields' lengths (constant time)
and then, only when the node count is inside its limit, the GPUs and replicas (a pass over
at most ``max_nodes`` nodes and ``max_workloads`` workloads). Beyond the configured limits
(``ServerConfig.max_gpus``, ``max_nodes``, ``max_workloads``, ``max_replicas``) the answer is
INVALID_ARGUMENT, with the field paths, before anything is converted.

The same counts say where the work runs: a request above ``inline_max_gpus`` GPUs or
``inline_max_bytes`` bytes is converted, checked and verified in a worker process (see
``server.pool``), so that it never holds the server's interpreter (health checks and the
other calls answer meanwhile) and its memory goes back when the process is replaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from placement.core.domain import SolveOptions
from placement.core.errors import FieldError
from server.config import ServerConfig
from wire.gen.placement.v1 import placement_pb2 as pb


@dataclass(frozen=True)
class RequestSize:
    """The counts of one ``PlaceRequest`` (GPUs and replicas 0 when the node or workload count
    is already over its limit: they are not counted then)."""

    nodes: int
    workloads: int
    gpus: int
    replicas: int
    bytes: int

    def large(self, config: ServerConfig) -> bool:
        """Whether its work runs in a worker process rather than in the serving thread."""
        return self.gpus > config.inline_max_gpus or self.bytes > config.inline_max_bytes


def _replicas(w: pb.Workload) -> int:
    if w.HasField("max_replicas"):
        return max(0, w.max_replicas)
    return max(0, w.min_replicas) if w.HasField("min_replicas") else 1


def size_of(request: pb.PlaceRequest, config: ServerConfig) -> RequestSize:
    """The counts of ``request``, each pass bounded by the config's limits."""
    nodes, workloads = len(request.fleet.nodes), len(request.workloads)
    gpus = sum(max(0, n.gpu_count) for n in request.fleet.nodes) if nodes <= config.max_nodes else 0
    replicas = sum(_replicas(w) for w in request.workloads) if workloads <= config.max_workloads else 0
    return RequestSize(nodes, workloads, gpus, replicas, request.ByteSize())


def size_errors(size: RequestSize, config: ServerConfig, prefix: str = "") -> list[FieldError]:
    """The service's limits that ``size`` exceeds, each at the field it counts."""
    out: list[FieldError] = []
    checks = (
        ("fleet.nodes", "nodes", size.nodes, config.max_nodes),
        ("fleet.nodes", "GPUs (the sum of gpuCount)", size.gpus, config.max_gpus),
        ("workloads", "workloads", size.workloads, config.max_workloads),
        ("workloads", "replicas (the sum of maxReplicas)", size.replicas, config.max_replicas),
    )
    for path, what, got, limit in checks:
        if got > limit:
            out.append(FieldError(prefix + path, f"too many {what} for this service: {got:,} > {limit:,}"))
    return out


def requested_time_limit_s(request: pb.PlaceRequest) -> float:
    """The request's time limit (its default when absent; the default too when out of range,
    which the input checks report)."""
    default = SolveOptions().time_limit_s
    if not request.options.HasField("time_limit_s"):
        return default
    t = request.options.time_limit_s
    return t if math.isfinite(t) and t > 0 else default
