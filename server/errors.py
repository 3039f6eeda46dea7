"""One exception hierarchy for the service, mapped to gRPC status codes by one interceptor.

Handlers raise; they never call ``context.abort``. ``ErrorInterceptor`` turns

* ``placement.core.errors.InputError`` and ``InvalidArgument`` into INVALID_ARGUMENT with a
  ``google.rpc.BadRequest`` detail: one field violation per problem, each with its proto
  JSON path, the first ``MAX_DETAIL_VIOLATIONS`` problems at most (and at most
  ``MAX_DETAIL_BYTES`` of them), and a ``google.rpc.ErrorInfo`` with how many there are
  (``violations``) and how many are listed (``listed``). The details travel in trailing
  metadata, which a default gRPC client refuses past 16 KiB (and may refuse past 8 KiB):
  capped, every client gets INVALID_ARGUMENT however many problems a request has;
* the other ``ServiceError`` subclasses into their ``code`` (RESOURCE_EXHAUSTED,
  UNAUTHENTICATED, UNAVAILABLE, ...);
* anything else into INTERNAL with a generic message and the request id (a bug: the
  traceback goes to the log, never to the client).

It also reads the requests of the unary-request methods itself (``guarded_reader``): one
over ``max_request_bytes`` is RESOURCE_EXHAUSTED, bytes that are no message of the
method's type are INVALID_ARGUMENT, both answered (and counted) like any other error
instead of by gRPC before any handler (which answers INTERNAL for unreadable bytes and is
invisible to the metrics).

Only INTERNAL is logged with a traceback; the rest are answers, logged at INFO.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from placement.core.errors import FieldError, InputError, PlacementError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors handlers raise on purpose; ``code`` is the status they map to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...], count: int | None = None) -> None:
        """``errors``: the problems (the first ones, when ``count`` says there are more)."""
        self.errors = tuple(errors)
        self.count = max(len(self.errors), count or 0)
        n = self.count
        super().__init__(
            f"invalid request ({n:,} problem{'s' if n != 1 else ''}): " + _summary(self.errors, n)
        )


class Overloaded(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class TooLarge(ServiceError):
    """A request over ``max_message_bytes``: refused before it is read."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Cancelled(ServiceError):
    """The caller cancelled; nobody reads the answer."""

    code = grpc.StatusCode.CANCELLED


class Unreadable(ServiceError):
    """The request's bytes are no message of the method's request type."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed, or leaves too little time to answer at all."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ShuttingDown(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class NoStore(ServiceError):
    """A plan-store RPC on a server without a store, or a rebalance with no current plan and no input."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(ServiceError):
    """No stored plan of that id."""

    code = grpc.StatusCode.NOT_FOUND


class Aborted(ServiceError):
    """Another rebalance holds the store, or the current plan changed meanwhile."""

    code = grpc.StatusCode.ABORTED


class StoreUnavailable(ServiceError):
    """The plan store cannot be reached."""

    code = grpc.StatusCode.UNAVAILABLE


class SolveFailed(ServiceError):
    """The solver process failed (a bug or a crash); the request itself was valid."""

    code = grpc.StatusCode.INTERNAL


MAX_DETAIL_VIOLATIONS = 50  # field violations carried in the details of one error
MAX_DETAIL_BYTES = 4096  # of serialized violations (base64 in the trailer: about 5.5 KiB)
MAX_MESSAGE_CHARS = 600  # of the status message (grpc-message, percent-encoded in the trailer)
ERROR_DOMAIN = "fleetplace"


def _summary(errors: tuple[FieldError, ...], count: int, limit: int = 3) -> str:
    text = "; ".join(str(e) for e in errors[:limit])
    shown = min(limit, len(errors))
    text += f"; and {count - shown:,} more" if count > shown else ""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text.encode("ascii", "backslashreplace").decode()  # percent-encoding triples non-ASCII


def listed_violations(errors: tuple[FieldError, ...]) -> list[error_details_pb2.BadRequest.FieldViolation]:
    """The first problems, as many as fit ``MAX_DETAIL_VIOLATIONS`` and ``MAX_DETAIL_BYTES``."""
    out: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for e in errors[:MAX_DETAIL_VIOLATIONS]:
        v = error_details_pb2.BadRequest.FieldViolation(field=e.path, description=e.message)
        size += v.ByteSize() + 3  # the field's tag and length
        if out and size > MAX_DETAIL_BYTES:
            break
        out.append(v)
    return out


def to_status(exc: BaseException, request_id: str = "") -> status_pb2.Status:
    """The ``google.rpc.Status`` a client gets for ``exc``."""
    if isinstance(exc, InputError):
        exc = InvalidArgument(exc.errors)
    if isinstance(exc, InvalidArgument):
        listed = listed_violations(exc.errors)
        bad, info = any_pb2.Any(), any_pb2.Any()
        bad.Pack(error_details_pb2.BadRequest(field_violations=listed))
        info.Pack(
            error_details_pb2.ErrorInfo(
                reason="INVALID_REQUEST",
                domain=ERROR_DOMAIN,
                metadata={"violations": str(exc.count), "listed": str(len(listed))},
            )
        )
        return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=exc.message, details=[bad, info])
    if isinstance(exc, ServiceError) and exc.code is not grpc.StatusCode.INTERNAL:
        return status_pb2.Status(code=exc.code.value[0], message=exc.message)
    suffix = f" (request id {request_id})" if request_id else ""
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error" + suffix)


def field_violations(error: grpc.RpcError) -> list[FieldError]:
    """The ``BadRequest`` field violations of an INVALID_ARGUMENT error, client side (the first
    problems: ``violation_count`` tells how many there are)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    out: list[FieldError] = []
    if status is None:
        return out
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend(FieldError(v.field, v.description) for v in bad.field_violations)
    return out


def violation_count(error: grpc.RpcError) -> int:
    """How many problems an INVALID_ARGUMENT error found (its details list the first ones)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return 0
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == ERROR_DOMAIN and info.metadata.get("violations", "").isdigit():
                return int(info.metadata["violations"])
    return len(field_violations(error))


# ----------------------------------------------------------------- interceptor plumbing

Around = Callable[[str, grpc.ServicerContext], contextlib.AbstractContextManager[None]]


class Refused:
    """What ``guarded_reader`` hands the handler instead of a request it refused."""

    def __init__(self, error: ServiceError, reason: str) -> None:
        self.error = error
        self.reason = reason  # "oversized" or "undeserializable"


def guarded_reader(read: Callable[[bytes], Any] | None, max_bytes: int) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: a ``Refused`` for bytes over ``max_bytes`` or
    that ``read`` cannot parse (``guard_before`` raises its error inside the handler)."""

    def guarded(data: bytes) -> Any:
        if len(data) > max_bytes:
            return Refused(
                TooLarge(f"the request has {len(data):,} bytes; this server takes at most {max_bytes:,}"),
                "oversized",
            )
        if read is None:
            return data
        try:
            return read(data)
        except Exception as e:
            return Refused(
                Unreadable(f"the request bytes are no message of this method's type ({e})"),
                "undeserializable",
            )

    return guarded


def wrap_handler(
    handler: grpc.RpcMethodHandler,
    method: str,
    around: Around,
    reader: Callable[[bytes], Any] | None = None,
    before: Callable[[Any], None] | None = None,
) -> grpc.RpcMethodHandler:
    """``handler`` with each call's behaviour run inside ``around(method, context)``; for the
    unary-request methods, ``reader`` (when given) replaces the request deserializer and
    ``before(request)`` runs first inside ``around``."""

    def unary(fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with around(method, context):
                if before is not None:
                    before(request)
                return fn(request, context)

        return call

    def stream(
        fn: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with around(method, context):
                if before is not None:
                    before(request)
                yield from fn(request, context)

        return call

    unary_request = handler.unary_unary is not None or handler.unary_stream is not None
    if not unary_request:
        before = None
    kw = {
        "request_deserializer": reader
        if reader is not None and unary_request
        else handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kw)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(stream(handler.unary_stream), **kw)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kw)
    return grpc.stream_stream_rpc_method_handler(stream(handler.stream_stream), **kw)


class ErrorInterceptor(grpc.ServerInterceptor):
    """Maps every exception a handler raises to its status, in this one place; with
    ``max_request_bytes``, reads the requests itself (``guarded_reader``) and reports each one
    it refuses to ``on_refused(method, reason)``."""

    def __init__(
        self,
        request_id: Callable[[], str],
        max_request_bytes: int | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self._request_id = request_id
        self._max_request_bytes = max_request_bytes
        self._on_refused = on_refused

    @contextlib.contextmanager
    def _around(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        try:
            yield
        except (ServiceError, PlacementError) as e:
            internal = isinstance(e, ServiceError) and e.code is grpc.StatusCode.INTERNAL
            if internal or not isinstance(e, ServiceError | InputError):  # a bug, or a crashed solver
                log.exception("%s failed", method)
            else:
                log.info("%s: %s", method, e)
            context.abort_with_status(rpc_status.to_status(to_status(e, self._request_id())))
        except Exception as e:
            if context.code() not in (None, grpc.StatusCode.OK):  # type: ignore[attr-defined]
                raise  # already aborted
            log.exception("%s failed: %s", method, type(e).__name__)
            context.abort_with_status(rpc_status.to_status(to_status(e, self._request_id())))

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if self._max_request_bytes is None:
            return wrap_handler(handler, method, self._around)

        def before(request: Any) -> None:
            if isinstance(request, Refused):
                if self._on_refused is not None:
                    self._on_refused(method.rsplit("/", 1)[-1], request.reason)
                raise request.error

        reader = guarded_reader(handler.request_deserializer, self._max_request_bytes)
        return wrap_handler(handler, method, self._around, reader, before)
