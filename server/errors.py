"""One exception hierarchy for the service, mapped to gRPC status codes by one interceptor.

Handlers raise; they never call ``context.abort``. ``ErrorInterceptor`` turns

* ``placement.errors.InputError`` and ``InvalidArgument`` into INVALID_ARGUMENT with a
  ``google.rpc.BadRequest`` detail: one field violation per problem, each with its proto
  JSON path (every problem at once);
* the other ``ServiceError`` subclasses into their ``code`` (RESOURCE_EXHAUSTED,
  UNAUTHENTICATED, UNAVAILABLE, ...);
* anything else into INTERNAL with a generic message and the request id (a bug: the
  traceback goes to the log, never to the client).

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

from placement.errors import FieldError, InputError, PlacementError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors handlers raise on purpose; ``code`` is the status they map to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors = tuple(errors)
        n = len(self.errors)
        super().__init__(f"invalid request ({n} problem{'s' if n != 1 else ''}): " + _summary(self.errors))


class Overloaded(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ShuttingDown(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class SolveFailed(ServiceError):
    """The solver process failed (a bug or a crash); the request itself was valid."""

    code = grpc.StatusCode.INTERNAL


def _summary(errors: tuple[FieldError, ...], limit: int = 5) -> str:
    text = "; ".join(str(e) for e in errors[:limit])
    return text + (f"; and {len(errors) - limit} more" if len(errors) > limit else "")


def to_status(exc: BaseException, request_id: str = "") -> status_pb2.Status:
    """The ``google.rpc.Status`` a client gets for ``exc``."""
    if isinstance(exc, InputError):
        exc = InvalidArgument(exc.errors)
    if isinstance(exc, InvalidArgument):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=e.path, description=e.message)
                for e in exc.errors
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(detail)
        return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=exc.message, details=[packed])
    if isinstance(exc, ServiceError) and exc.code is not grpc.StatusCode.INTERNAL:
        return status_pb2.Status(code=exc.code.value[0], message=exc.message)
    suffix = f" (request id {request_id})" if request_id else ""
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error" + suffix)


def field_violations(error: grpc.RpcError) -> list[FieldError]:
    """The ``BadRequest`` field violations of an INVALID_ARGUMENT error, client side."""
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


# ----------------------------------------------------------------- interceptor plumbing

Around = Callable[[str, grpc.ServicerContext], contextlib.AbstractContextManager[None]]


def wrap_handler(handler: grpc.RpcMethodHandler, method: str, around: Around) -> grpc.RpcMethodHandler:
    """``handler`` with each call's behaviour run inside ``around(method, context)``."""

    def unary(fn: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            with around(method, context):
                return fn(request, context)

        return call

    def stream(
        fn: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with around(method, context):
                yield from fn(request, context)

        return call

    kw = {
        "request_deserializer": handler.request_deserializer,
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
    """Maps every exception a handler raises to its status, in this one place."""

    def __init__(self, request_id: Callable[[], str]) -> None:
        self._request_id = request_id

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
        return wrap_handler(handler, handler_call_details.method, self._around)
