"""Observability: Prometheus metrics, request ids and structured (JSON) logs.

Metrics (one ``CollectorRegistry`` per server, so tests can run several servers):

* ``fleetplace_requests_total{method,code}``: every call by its final status code;
* ``fleetplace_errors_total{method,code}``: the calls that did not end OK;
* ``fleetplace_request_seconds{method}``: call latency;
* ``fleetplace_solve_seconds``: wall time of each solve (worker side);
* ``fleetplace_solve_gap``: relative gap of each plan that has a bound;
* ``fleetplace_solves_running`` / ``fleetplace_solves_queued``: the worker pool right now.

Request ids: a call's ``x-request-id`` metadata, or a fresh one; it goes back in the
initial metadata and into every log record of the call (``request_id``), through a
context variable that ``RequestIdFilter`` reads.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from server.errors import wrap_handler

log = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    return request_id_var.get()


class Metrics:
    """The service's metrics, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "fleetplace_requests", "Calls by method and status code", ["method", "code"], registry=r
        )
        self.errors = Counter(
            "fleetplace_errors", "Calls that did not end OK", ["method", "code"], registry=r
        )
        self.latency = Histogram(
            "fleetplace_request_seconds",
            "Call latency",
            ["method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.solve_seconds = Histogram(
            "fleetplace_solve_seconds",
            "Wall time of a solve",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.gap = Histogram(
            "fleetplace_solve_gap",
            "Relative gap of returned plans that have a bound",
            buckets=(0.0, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
            registry=r,
        )
        self.running = Gauge("fleetplace_solves_running", "Solves running in worker processes", registry=r)
        self.queued = Gauge("fleetplace_solves_queued", "Solves waiting for a worker", registry=r)

    def serve_http(self, address: str, port: int) -> tuple[Any, int]:
        """Start ``/metrics`` on ``address:port`` (0: a free port); returns (server, port)."""
        httpd, _thread = start_http_server(port, addr=address, registry=self.registry)
        return httpd, int(httpd.server_address[1])


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current call's id, or '-')."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def configure_logging(level: int = logging.INFO, json_logs: bool = True) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else logging.Formatter("%(levelname)s %(request_id)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Outermost: sets the request id, times the call and counts it by its final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @contextlib.contextmanager
    def _around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        given = dict(context.invocation_metadata()).get("x-request-id")
        rid = given if isinstance(given, str) and 0 < len(given) <= 128 else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        with contextlib.suppress(ValueError):  # metadata already sent (cannot happen first thing)
            context.send_initial_metadata((("x-request-id", rid),))
        short = method.rsplit("/", 1)[-1]
        t0 = time.monotonic()
        code = "OK"
        try:
            yield
        except GeneratorExit:  # a stream the client stopped reading
            code = "CANCELLED"
            raise
        except BaseException:
            got = context.code()  # type: ignore[attr-defined]
            code = got.name if got is not None else "UNKNOWN"
            raise
        finally:
            if code == "OK" and not context.is_active():
                code = "CANCELLED"
            elapsed = time.monotonic() - t0
            self.metrics.requests.labels(short, code).inc()
            if code != "OK":
                self.metrics.errors.labels(short, code).inc()
            self.metrics.latency.labels(short).observe(elapsed)
            log.info("%s %s in %.3f s", short, code, elapsed)
            request_id_var.reset(token)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return wrap_handler(handler, handler_call_details.method, self._around)
