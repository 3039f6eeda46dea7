"""A small typed client for ``placement.v1.PlacementService``.

    with PlacementClient("127.0.0.1:50051", timeout_s=60) as client:
        plan = client.place(request)            # pb.Plan
        for event in client.place_stream(request):
            ...                                  # pb.Progress events, then the pb.Plan
        violations = client.verify(request, plan)

Every call has a deadline (``timeout_s``, per call or the client default). Only
UNAVAILABLE is retried (the server is starting, restarting, shutting down or unreachable),
with exponential backoff and jitter, and only while the deadline leaves room: every other
status is the server's answer and is raised at once as ``grpc.RpcError``
(``server.errors.field_violations(e)`` lists the fields of an INVALID_ARGUMENT, the first
ones; ``violation_count(e)`` how many there are). When the retries run out, the error
raised is the service's own answer if one came ("the server is shutting down"), not the
"Connection refused" of the attempts after it exited, which would hide the cause.
Streams are not retried once an event has arrived.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc

from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

T = TypeVar("T")


def from_server(error: grpc.RpcError) -> bool:
    """Whether ``error`` is the service's own answer (its error interceptor always sends a
    ``grpc-status-details-bin`` trailer), not the transport's or the client's own (a refused
    connection, a reset, the deadline firing here)."""
    if not isinstance(error, grpc.Call):
        return False
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # a call that never started has none
        return False
    return any(k == "grpc-status-details-bin" for k, _ in trailers)


class PlacementClient:
    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 60.0,
        token: str | None = None,
        root_certificates: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        server_name: str | None = None,
        max_attempts: int = 4,
        backoff_s: float = 0.2,
        max_message_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        """``root_certificates`` set: TLS (with ``client_cert``/``client_key``: mutual TLS)."""
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(
                root_certificates=Path(root_certificates).read_bytes(),
                private_key=Path(client_key).read_bytes() if client_key else None,
                certificate_chain=Path(client_cert).read_bytes() if client_cert else None,
            )
            self.channel = grpc.secure_channel(address, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.stub = pb_grpc.PlacementServiceStub(self.channel)
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()

    def __repr__(self) -> str:  # never the token
        return f"PlacementClient(timeout_s={self.timeout_s}, auth={'on' if self._metadata else 'off'})"

    def __enter__(self) -> PlacementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, fn: Callable[[float, tuple[tuple[str, str], ...]], T], timeout_s: float | None) -> T:
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        attempt = 0
        answered: grpc.RpcError | None = None  # the last UNAVAILABLE the service itself sent
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            try:
                return fn(max(0.0, left), self._metadata)
            except grpc.RpcError as e:
                code = e.code() if isinstance(e, grpc.Call) else None
                if code is not grpc.StatusCode.UNAVAILABLE:
                    raise
                if from_server(e):
                    answered = e
                pause = self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
                if attempt >= self.max_attempts or deadline - time.monotonic() <= pause:
                    if answered is not None and answered is not e:
                        raise answered from e
                    raise
                time.sleep(pause)

    def place(self, request: pb.PlaceRequest, timeout_s: float | None = None) -> pb.Plan:
        """The plan (an infeasible or partly placed fleet is a plan with reasons)."""
        response: pb.PlaceResponse = self._call(
            lambda t, md: self.stub.Place(request, timeout=t, metadata=md), timeout_s
        )
        return response.plan

    def place_stream(
        self, request: pb.PlaceRequest, timeout_s: float | None = None
    ) -> Iterator[pb.Progress | pb.Plan]:
        """Progress events as the solver improves, then the plan (last)."""
        stream = self._call(lambda t, md: self.stub.PlaceStream(request, timeout=t, metadata=md), timeout_s)
        for event in stream:
            yield event.progress if event.WhichOneof("event") == "progress" else event.plan

    def verify(
        self, request: pb.PlaceRequest, plan: pb.Plan, timeout_s: float | None = None
    ) -> pb.VerifyResponse:
        message = pb.VerifyRequest(request=request, plan=plan)
        result: pb.VerifyResponse = self._call(
            lambda t, md: self.stub.Verify(message, timeout=t, metadata=md), timeout_s
        )
        return result

    def explain(
        self,
        request: pb.PlaceRequest,
        workload: str,
        site: str = "",
        plan: pb.Plan | None = None,
        timeout_s: float | None = None,
    ) -> pb.ExplainResponse:
        message = pb.ExplainRequest(request=request, workload=workload, site=site, plan=plan)
        result: pb.ExplainResponse = self._call(
            lambda t, md: self.stub.Explain(message, timeout=t, metadata=md), timeout_s
        )
        return result
