"""Over gRPC the same input checks run before anything computes: out-of-range numbers, empty
requests and huge names are INVALID_ARGUMENT with field violations from Place, Verify and
Explain, never INTERNAL (a real server on loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from server.errors import field_violations
from tests.server_support import dataset, running_server, stub
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def service() -> Iterator[pb_grpc.PlacementServiceStub]:
    with running_server() as (_, address):
        channel, s = stub(address)
        yield s
        channel.close()


def _overflow(r: pb.PlaceRequest) -> None:
    r.fleet.sites[0].capacity_kw = 1e308  # capacity x 1000 overflowed usable_power_w: INTERNAL before


def _huge_name(r: pb.PlaceRequest) -> None:
    r.workloads[0].name = "w" * 5_000_000


def _empty(r: pb.PlaceRequest) -> None:
    r.Clear()


Call = Callable[[pb_grpc.PlacementServiceStub, pb.PlaceRequest], object]
CALLS: dict[str, tuple[Call, str]] = {
    "Place": (lambda s, r: s.Place(r, timeout=20), ""),
    "Verify": (lambda s, r: s.Verify(pb.VerifyRequest(request=r), timeout=20), "request."),
    "Explain": (
        lambda s, r: s.Explain(pb.ExplainRequest(request=r, workload="anything"), timeout=20),
        "request.",
    ),
}
CASES = [
    ("capacity 1e308", _overflow, ["fleet.sites[0].capacityKw"], "between 0 and 1000000 kW"),
    ("5 MB workload name", _huge_name, ["workloads[0].name"], "at most 253"),
    ("empty request", _empty, ["fleet.nodes", "workloads"], "give at least one"),
]


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(("mutate", "paths", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_argument_with_the_field_paths(
    service: pb_grpc.PlacementServiceStub,
    call: str,
    mutate: Callable[[pb.PlaceRequest], None],
    paths: list[str],
    word: str,
) -> None:
    request = dataset("tiny")
    mutate(request)
    fn, prefix = CALLS[call]
    with pytest.raises(grpc.RpcError) as err:
        fn(service, request)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, err.value.details()  # type: ignore[attr-defined]
    violations = field_violations(err.value)
    got = [v.path for v in violations]
    assert [prefix + p for p in paths] == [p for p in got if p in {prefix + q for q in paths}]
    first = next(v for v in violations if v.path == prefix + paths[0])
    assert word in first.message
    assert all(len(v.message) < 300 for v in violations)  # nothing echoes the 5 MB name
