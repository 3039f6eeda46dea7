"""Building and running the server: ``create_server(config) -> (server, port)`` and ``serve``.

The server carries the placement service, the standard health service (per-service
status: "" and ``placement.v1.PlacementService``; NOT_SERVING as soon as shutdown
begins) and server reflection. Interceptors, outermost first: observability (request
id, metrics, logs), error mapping, then authentication when tokens are configured, so
that a refused call is counted, logged and mapped like any other error.

Limits: the solver pool bounds concurrent and queued solves (not
``maximum_concurrent_rpcs``, which would refuse health checks under load); gRPC refuses
requests over ``max_message_bytes`` with RESOURCE_EXHAUSTED before any handler runs.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.auth import AuthInterceptor, load_tokens
from server.config import ServerConfig
from server.errors import ErrorInterceptor
from server.gen.placement.v1 import placement_pb2 as pb
from server.gen.placement.v1 import placement_pb2_grpc as pb_grpc
from server.metrics import Metrics, ObservabilityInterceptor, current_request_id
from server.pool import SolvePool
from server.service import PlacementServicer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PlacementService"].full_name


class Server:
    """The running service: gRPC server, solver pool, health, metrics endpoint."""

    def __init__(
        self,
        config: ServerConfig,
        grpc_server: grpc.Server,
        pool: SolvePool,
        health_servicer: health.HealthServicer,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.grpc_server = grpc_server
        self.pool = pool
        self.health = health_servicer
        self.metrics = metrics
        self.metrics_port: int | None = None
        self._httpd: Any = None
        self._stopped = threading.Event()

    def start(self, wait_ready_s: float = 60) -> None:
        """Start serving once the solver processes are up (a solve never waits for a cold start)."""
        self.pool.wait_ready(wait_ready_s)
        self.grpc_server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.config.metrics_port >= 0:
            self._httpd, self.metrics_port = self.metrics.serve_http(
                self.config.metrics_address, self.config.metrics_port
            )
        log.info("serving on %s (metrics port %s)", self.config.address, self.metrics_port)

    def stop(self, grace_s: float | None = None) -> None:
        """Stop accepting; in-flight calls get ``grace_s``, then are cancelled (their solves stopped)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.grace_s if grace_s is None else grace_s
        self.health.enter_graceful_shutdown()
        log.info("shutting down: %.1f s grace for in-flight calls", grace)
        self.grpc_server.stop(grace).wait()
        self.pool.close()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        log.info("stopped")

    def wait_for_termination(self, timeout_s: float | None = None) -> bool:
        return self.grpc_server.wait_for_termination(timeout_s)


def _credentials(config: ServerConfig) -> grpc.ServerCredentials:
    key = Path(config.tls_key).read_bytes()
    chain = Path(config.tls_cert).read_bytes()
    if config.tls_client_ca:
        return grpc.ssl_server_credentials(
            [(key, chain)],
            root_certificates=Path(config.tls_client_ca).read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([(key, chain)])


def create_server(config: ServerConfig) -> tuple[Server, int]:
    """A server bound to ``config.address`` (port 0: a free one), not yet started; and its port."""
    metrics = Metrics()
    interceptors: list[grpc.ServerInterceptor] = [
        ObservabilityInterceptor(metrics),
        ErrorInterceptor(current_request_id),
    ]
    if config.auth:
        interceptors.append(
            AuthInterceptor(
                load_tokens(config.tokens_file, config.tokens_env), protect_health=config.auth_health
            )
        )
    pool = SolvePool(config.max_concurrent_solves, config.max_queued_solves, nice=config.worker_nice)
    metrics.running.set_function(lambda: pool.running)
    metrics.queued.set_function(lambda: pool.queued)
    threads = config.handler_threads + config.max_concurrent_solves + config.max_queued_solves
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_PlacementServiceServicer_to_server(PlacementServicer(config, pool, metrics), grpc_server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        grpc_server,
    )
    try:
        if config.tls:
            port = grpc_server.add_secure_port(config.address, _credentials(config))
        else:
            port = grpc_server.add_insecure_port(config.address)
    except RuntimeError as e:
        pool.close()
        raise OSError(f"cannot bind {config.address}: {e}") from e
    if port == 0:
        pool.close()
        raise OSError(f"cannot bind {config.address}")
    return Server(config, grpc_server, pool, health_servicer, metrics), port


def serve(config: ServerConfig, on_started: Callable[[int], None] | None = None) -> int:
    """Run until SIGTERM or SIGINT; then stop accepting, give in-flight calls the grace period, exit 0."""
    server, port = create_server(config)
    server.start()
    host = config.address.rpartition(":")[0]
    log.info(
        "fleetplace serving placement.v1 on %s:%d (tls %s, mtls %s, auth %s)",
        host,
        port,
        "on" if config.tls else "off",
        "on" if config.tls_client_ca else "off",
        "on" if config.auth else "off",
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_started is not None:
            on_started(port)
        while not done.wait(0.5):
            pass
        server.stop()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return 0
