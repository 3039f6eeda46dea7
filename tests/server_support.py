"""Shared helpers for the server tests: a real server on loopback port 0, datasets, stubs, status codes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import grpc

from server.app import Server, create_server
from server.config import ServerConfig
from tests.builders import DATASETS
from wire.files import load_request
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc


def dataset(name: str, time_limit_s: float = 2.0) -> pb.PlaceRequest:
    request = load_request(DATASETS / name)
    request.options.time_limit_s = time_limit_s
    return request


@contextlib.contextmanager
def running_server(**config: object) -> Iterator[tuple[Server, str]]:
    cfg = ServerConfig(**{"address": "127.0.0.1:0", **config})  # type: ignore[arg-type]
    server, port = create_server(cfg)
    server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        server.stop(grace_s=0.5)


def stub(address: str) -> tuple[grpc.Channel, pb_grpc.PlacementServiceStub]:
    channel = grpc.insecure_channel(address)
    return channel, pb_grpc.PlacementServiceStub(channel)


def status_code(fn: Callable[[], object]) -> grpc.StatusCode:
    """The status of one call: OK if it returned, else the code it raised."""
    try:
        fn()
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()  # type: ignore[attr-defined,no-any-return]


def eventually(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Calls are counted when gRPC reports their end, which may come just after the client's answer."""
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True
