"""Observability: Prometheus metrics, request ids and structured (JSON) logs.

Metrics (one ``CollectorRegistry`` per server, so tests can run several servers):

* ``fleetplace_requests_total{method,code}``: every call by its final status code;
* ``fleetplace_errors_total{method,code}``: the calls that did not end OK;
* ``fleetplace_request_seconds{method}``: call latency;
* ``fleetplace_solve_seconds``: wall time of each solve (worker side);
* ``fleetplace_solve_gap``: relative gap of each plan that has a bound;
* ``fleetplace_solves_running`` / ``fleetplace_solves_queued``: the worker pool right now;
* ``fleetplace_send_seconds{method}``: from the moment a handler has its answer (a plan,
  the fallback, an error: ``answering``) to the end of its call (building and encoding the
  answer, sending it, and waiting for the server's threads: it grows with load; the
  servicer keeps the recent longest as part of its margin before a deadline);
* ``fleetplace_refused_requests_total{method,reason}``: requests refused before a handler
  could read them: ``oversized`` (over ``max_message_bytes``) or ``undeserializable``
  (bytes that are no message of the method's type); they are in ``requests_total`` too.

A call is counted by what its client sees, when the call ends: OK only if the answer went
out; DEADLINE_EXCEEDED when the deadline passed first (whether or not the handler had an
answer), CANCELLED when the caller cancelled.

Request ids: a call's ``x-request-id`` metadata, or a fresh one; it goes back in the
initial metadata and into every log record of the call (``request_id``), through a
context variable that ``RequestIdFilter`` reads.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from server.errors import wrap_handler

log = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# when the handler began to answer (it had its plan, or chose the fallback): the send time runs from here
answer_started_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "answer_started", default=None
)


def answering() -> None:
    """The handler has what it will answer (a plan, the fallback, an error): from now on the
    time counts as sending (building the answer from here on included)."""
    if answer_started_var.get() is None:
        answer_started_var.set(time.monotonic())


SEND_WINDOW_CALLS = 64
SEND_WINDOW_S = 60.0
PLACEMENT_PREFIX = "/placement.v1."


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
        self.send_seconds = Histogram(
            "fleetplace_send_seconds",
            "From a handler's answer to the end of its call",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.refused = Counter(
            "fleetplace_refused_requests",
            "Requests refused before a handler could read them",
            ["method", "reason"],
            registry=r,
        )
        self._sends: collections.deque[tuple[float, float]] = collections.deque(maxlen=SEND_WINDOW_CALLS)
        self._in_flight = 0
        self._cond = threading.Condition()

    def sent(self, method: str, seconds: float) -> None:
        """An answer took ``seconds`` from its handler to the end of its call."""
        self.send_seconds.labels(method).observe(seconds)
        with self._cond:
            self._sends.append((time.monotonic(), seconds))

    def send_lag_s(self) -> float:
        """The longest of the recent answers' send times (the last ``SEND_WINDOW_CALLS`` calls
        within ``SEND_WINDOW_S``): what the next answer should expect under the current load."""
        since = time.monotonic() - SEND_WINDOW_S
        with self._cond:
            return max((x for t, x in self._sends if t >= since), default=0.0)

    def call_started(self) -> None:
        with self._cond:
            self._in_flight += 1

    def call_ended(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        """Calls of the placement service not yet ended (answered, failed or cancelled)."""
        return self._in_flight

    def wait_in_flight(self, until: float) -> bool:
        """Wait until no placement call is in flight (or the monotonic time ``until``); whether none is."""
        with self._cond:
            while self._in_flight > 0:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

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
        else logging.Formatter("%(asctime)s %(levelname)s %(request_id)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _expired(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _client_cancelled(context: grpc.ServicerContext) -> bool | None:
    """Whether gRPC cancelled the call (deadline or the caller) rather than delivered it, when
    this grpcio tells (its call state; ``None`` otherwise)."""
    client = getattr(getattr(context, "_state", None), "client", None)
    return None if not isinstance(client, str) else client == "cancelled"


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Outermost: sets the request id, times the call and counts it by what its client saw, when
    the call ends (gRPC's completion callback: the answer is out, or the call was cancelled)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @contextlib.contextmanager
    def _around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        given = dict(context.invocation_metadata()).get("x-request-id")
        rid = given if isinstance(given, str) and 0 < len(given) <= 128 else uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        answer_token = answer_started_var.set(None)
        with contextlib.suppress(ValueError):  # metadata already sent (cannot happen first thing)
            context.send_initial_metadata((("x-request-id", rid),))
        short = method.rsplit("/", 1)[-1]
        tracked = method.startswith(PLACEMENT_PREFIX)
        if tracked:
            self.metrics.call_started()
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
            answered = answer_started_var.get() or time.monotonic()
            answer_started_var.reset(answer_token)
            if code in ("OK", "CANCELLED") and _expired(context):
                code = "DEADLINE_EXCEEDED"
            elif code == "OK" and not context.is_active():
                code = "CANCELLED"
            request_id_var.reset(token)

            def ended() -> None:
                final = code
                gone = _client_cancelled(context)
                if final == "OK" and (gone or (gone is None and _expired(context))):
                    final = "DEADLINE_EXCEEDED" if _expired(context) else "CANCELLED"
                if final == "OK":
                    self.metrics.sent(short, time.monotonic() - answered)
                self._count(short, final, time.monotonic() - t0, rid)
                if tracked:
                    self.metrics.call_ended()

            if not context.add_callback(ended):  # the call is over already
                ended()

    def _count(self, method: str, code: str, elapsed: float, rid: str) -> None:
        self.metrics.requests.labels(method, code).inc()
        if code != "OK":
            self.metrics.errors.labels(method, code).inc()
        self.metrics.latency.labels(method).observe(elapsed)
        token = request_id_var.set(rid)  # the callback runs on gRPC's own thread
        try:
            log.info("%s %s in %.3f s", method, code, elapsed)
        finally:
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
