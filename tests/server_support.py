"""Shared helpers for the server tests: a real server on loopback port 0, datasets, stubs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import grpc

from server.app import Server, create_server
from server.config import ServerConfig
from wire.files import load_request
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent


def dataset(name: str, time_limit_s: float = 2.0) -> pb.PlaceRequest:
    request = load_request(ROOT / "datasets" / name)
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
