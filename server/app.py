"""Building and running the server: ``create_server(config) -> (server, port)`` and ``serve``.

The server carries the placement service, the standard health service (per-service
status: "" and ``placement.v1.PlacementService``) and server reflection. Interceptors,
outermost first: observability (request id, metrics, logs), error mapping (which also
reads the requests: oversized or unreadable ones are answered and counted like any other
error), then authentication when tokens are configured, so that a refused call is counted,
logged and mapped like any other error.

Limits: the solver pool bounds concurrent and queued solves (not
``maximum_concurrent_rpcs``, which would refuse health checks under load); requests over
``max_message_bytes`` are RESOURCE_EXHAUSTED (gRPC itself refuses those over twice that
before any handler, uncounted); the fleet limits are in ``server.limits``.

Shutdown (SIGTERM, SIGINT, ``Server.stop``) drains before it stops: health answers
NOT_SERVING (``Check`` keeps answering, so probes see it; open ``Watch`` streams get
NOT_SERVING and end at once), new placement calls get UNAVAILABLE, the solves in flight
are told to stop and answer with their best verified plan; once every placement call has
ended, or the grace period is over, gRPC stops (cancelling what is left) and the worker
processes exit.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.auth import AuthInterceptor, load_tokens
from server.config import ServerConfig
from server.errors import ErrorInterceptor
from server.metrics import Metrics, ObservabilityInterceptor, current_request_id
from server.pool import SolvePool
from server.service import PlacementServicer, margins_s
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PlacementService"].full_name


class HealthService(health_pb2_grpc.HealthServicer):
    """``grpc.health.v1.Health`` with a drain: ``shutdown`` sets every service NOT_SERVING for
    good and ends every ``Watch`` stream after it has sent NOT_SERVING (a stream opened
    later gets its status and ends at once), so that no probe holds the server's exit."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._status: dict[str, health_pb2.HealthCheckResponse.ServingStatus.ValueType] = {}
        self._closing = False

    def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        with self._cond:
            if not self._closing:
                self._status[service] = status
                self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._closing = True
            for name in self._status:
                self._status[name] = health_pb2.HealthCheckResponse.NOT_SERVING
            self._cond.notify_all()

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        with self._cond:
            status = self._status.get(request.service)
        if status is None:
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return health_pb2.HealthCheckResponse()
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> Iterator[health_pb2.HealthCheckResponse]:
        unknown = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        sent = None
        while True:
            with self._cond:
                while (
                    not self._closing
                    and self._status.get(request.service, unknown) == sent
                    and context.is_active()
                ):
                    self._cond.wait(1.0)
                status, closing = self._status.get(request.service, unknown), self._closing
            if status != sent:
                yield health_pb2.HealthCheckResponse(status=status)
                sent = status
            if closing or not context.is_active():
                return


class Server:
    """The running service: gRPC server, solver and checker pools, health, metrics endpoint."""

    def __init__(
        self,
        config: ServerConfig,
        grpc_server: grpc.Server,
        pool: SolvePool,
        health_servicer: HealthService,
        metrics: Metrics,
        servicer: PlacementServicer | None = None,
        checks: SolvePool | None = None,
    ) -> None:
        self.config = config
        self.grpc_server = grpc_server
        self.pool = pool
        self.checks = checks
        self.servicer = servicer
        self.health = health_servicer
        self.metrics = metrics
        self.metrics_port: int | None = None
        self._httpd: Any = None
        self._stopped = threading.Event()

    def start(self, wait_ready_s: float = 60) -> None:
        """Start serving once the worker processes are up (a solve never waits for a cold start)."""
        self.pool.wait_ready(wait_ready_s)
        if self.checks is not None:
            self.checks.wait_ready(wait_ready_s)
        self.grpc_server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.config.metrics_port >= 0:
            self._httpd, self.metrics_port = self.metrics.serve_http(
                self.config.metrics_address, self.config.metrics_port
            )
        log.info("serving on %s (metrics port %s)", self.config.address, self.metrics_port)

    def drain(self, grace_s: float | None = None) -> float:
        """Begin the shutdown: NOT_SERVING, new placement calls refused, the solves in flight told
        to stop (they answer within the grace period). Returns the monotonic end of the grace."""
        grace = self.config.grace_s if grace_s is None else grace_s
        until = time.monotonic() + grace
        self.health.shutdown()
        if self.servicer is not None:
            self.servicer.draining = True
        answer_by = until - margins_s(0, self.metrics.send_lag_s())[0]
        for pool in (self.pool, self.checks):
            if pool is not None:
                pool.drain(answer_by)
        return until

    def stop(self, grace_s: float | None = None) -> None:
        """Drain (``drain``), wait for the placement calls in flight to end (at most ``grace_s``),
        then stop gRPC (what is left is cancelled) and the worker processes."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.grace_s if grace_s is None else grace_s
        log.info("shutting down: NOT_SERVING; %.1f s for the calls in flight", grace)
        until = self.drain(grace)
        if not self.metrics.wait_in_flight(until):
            log.warning("%d calls still in flight after %.1f s: cancelled", self.metrics.in_flight, grace)
        self.grpc_server.stop(max(0.0, min(1.0, until - time.monotonic()))).wait()
        self.pool.close()
        if self.checks is not None:
            self.checks.close()
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
    # the serving thread hands each call's events to Python: with handler threads busy in Python it
    # waits for the interpreter, by default 5 ms a turn; 1 ms keeps dispatch quick under load
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))

    def refused(method: str, reason: str) -> None:
        metrics.refused.labels(method, reason).inc()

    interceptors: list[grpc.ServerInterceptor] = [
        ObservabilityInterceptor(metrics),
        ErrorInterceptor(current_request_id, config.max_message_bytes, refused),
    ]
    if config.auth:
        interceptors.append(
            AuthInterceptor(
                load_tokens(config.tokens_file, config.tokens_env), protect_health=config.auth_health
            )
        )
    pool = SolvePool(config.max_concurrent_solves, config.max_queued_solves, nice=config.worker_nice)
    checks = SolvePool(
        config.max_concurrent_checks,
        config.max_queued_checks,
        nice=config.worker_nice,
        solver=False,
        name="checker",
    )
    metrics.running.set_function(lambda: pool.running)
    metrics.queued.set_function(lambda: pool.queued)
    threads = (
        config.handler_threads
        + config.max_concurrent_solves
        + config.max_queued_solves
        + config.max_concurrent_checks
        + config.max_queued_checks
    )
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            # the error interceptor refuses (and counts) what is over max_message_bytes; gRPC
            # refuses beyond twice that before reading it
            ("grpc.max_receive_message_length", 2 * config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_send_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = PlacementServicer(config, pool, metrics, checks)
    pb_grpc.add_PlacementServiceServicer_to_server(servicer, grpc_server)
    health_servicer = HealthService()
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
        checks.close()
        raise OSError(f"cannot bind {config.address}: {e}") from e
    if port == 0:
        pool.close()
        checks.close()
        raise OSError(f"cannot bind {config.address}")
    return Server(config, grpc_server, pool, health_servicer, metrics, servicer, checks), port


def serve(config: ServerConfig, on_started: Callable[[int], None] | None = None) -> int:
    """Run until SIGTERM or SIGINT; then drain (``Server.stop``: NOT_SERVING, the solves in flight
    answer within the grace period), stop and return 0."""
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
