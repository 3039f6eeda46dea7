"""Invalid input -> INVALID_ARGUMENT naming the field, one family at a time; fuzzed requests never crash the server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import field_violations
from tests.server_support import dataset, running_server, status_code
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

OK_OR_INVALID = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    with running_server(max_queued_solves=32) as (_, address):
        ch = grpc.insecure_channel(address)
        yield ch
        ch.close()


@pytest.fixture(scope="module")
def service(channel: grpc.Channel) -> pb_grpc.PlacementServiceStub:
    return pb_grpc.PlacementServiceStub(channel)


def _set(path: str, value: object) -> Callable[[pb.PlaceRequest], None]:
    def mutate(r: pb.PlaceRequest) -> None:
        *parents, last = path.split(".")
        target: object = r
        for part in parents:
            name, _, index = part.partition("[")
            target = getattr(target, name)
            if index:
                target = target[int(index[:-1])]  # type: ignore[index]
        setattr(target, last, value)

    return mutate


FAMILIES = [
    ("gpu type power", _set("fleet.gpu_types[0].max_power_w", -5), "fleet.gpuTypes[0].maxPowerW"),
    ("site capacity", _set("fleet.sites[0].capacity_kw", -1.0), "fleet.sites[0].capacityKw"),
    ("site enum", _set("fleet.sites[0].redundancy", 99), "fleet.sites[0].redundancy"),
    ("power domain site", _set("fleet.power_domains[0].site", "nowhere"), "fleet.powerDomains[0].site"),
    ("node gpu count", _set("fleet.nodes[0].gpu_count", 0), "fleet.nodes[0].gpuCount"),
    ("node gpu type", _set("fleet.nodes[0].gpu_type", "TPU"), "fleet.nodes[0].gpuType"),
    ("workload memory", _set("workloads[0].memory_gib", -1.0), "workloads[0].memoryGib"),
    ("workload replicas", _set("workloads[0].max_replicas", 0), "workloads[0].maxReplicas"),
    ("options time limit", _set("options.time_limit_s", -3.0), "options.timeLimitS"),
    ("options backend", _set("options.backend", 42), "options.backend"),
]


@pytest.mark.parametrize(("mutate", "path"), [f[1:] for f in FAMILIES], ids=[f[0] for f in FAMILIES])
def test_invalid_field_names_its_path(service: pb_grpc.PlacementServiceStub, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    request = dataset("tiny")
    mutate(request)
    with pytest.raises(grpc.RpcError) as err:
        service.Place(request, timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert path in [f.path for f in field_violations(err.value)]


def test_every_problem_at_once_and_verify_prefixes_paths(service: pb_grpc.PlacementServiceStub) -> None:
    request = dataset("tiny")
    for _, mutate, _ in FAMILIES[:3]:
        mutate(request)
    with pytest.raises(grpc.RpcError) as err:
        service.Verify(pb.VerifyRequest(request=request), timeout=10)
    paths = {f.path for f in field_violations(err.value)}
    assert {"request." + f[2] for f in FAMILIES[:3]} <= paths


def test_an_empty_request_is_invalid_argument(service: pb_grpc.PlacementServiceStub) -> None:
    """Issue 12: no nodes or no workloads is a mistake in what was sent, not a plan placing everything."""
    with pytest.raises(grpc.RpcError) as err:
        service.Place(pb.PlaceRequest(), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert [f.path for f in field_violations(err.value)] == ["fleet.nodes", "workloads"]


# ------------------------------------------------------------------------------- fuzzing


_SCALARS = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
)


def _fields(message: object) -> list[tuple[object, str]]:
    """Every (message, scalar field name) reachable in ``message``."""
    out: list[tuple[object, str]] = []
    for fd in message.DESCRIPTOR.fields:  # type: ignore[attr-defined]
        value = getattr(message, fd.name)
        if fd.message_type is not None:
            items = list(value) if fd.is_repeated else [value]
            for item in items:
                out += _fields(item)
        elif not fd.is_repeated:
            out.append((message, fd.name))
    return out


@st.composite
def mutated_requests(draw: st.DrawFn) -> pb.PlaceRequest:
    """The tiny dataset with a few scalar fields set to random values of any type (wrong types skipped)."""
    request = dataset("tiny", time_limit_s=0.3)
    fields = _fields(request)
    for _ in range(draw(st.integers(1, 4))):
        target, name = fields[draw(st.integers(0, len(fields) - 1))]
        value = draw(_SCALARS)
        if isinstance(value, bool) != isinstance(getattr(target, name), bool):
            continue  # protobuf deprecates bools in number fields
        with contextlib.suppress(TypeError, ValueError):
            setattr(target, name, value)
    if draw(st.booleans()):
        del request.workloads[draw(st.integers(0, len(request.workloads) - 1))]
    request.options.time_limit_s = min(abs(request.options.time_limit_s), 0.3) or 0.3
    return request


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=mutated_requests(), workload=st.text(max_size=6))
def test_mutated_requests_get_an_answer_never_internal(
    service: pb_grpc.PlacementServiceStub, request: pb.PlaceRequest, workload: str
) -> None:
    assert status_code(lambda: service.Verify(pb.VerifyRequest(request=request), timeout=10)) in OK_OR_INVALID
    explain = pb.ExplainRequest(request=request, workload=workload)
    assert status_code(lambda: service.Explain(explain, timeout=10)) in OK_OR_INVALID


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=mutated_requests())
def test_mutated_place_requests_get_a_plan_or_invalid_argument(
    service: pb_grpc.PlacementServiceStub, request: pb.PlaceRequest
) -> None:
    assert status_code(lambda: service.Place(request, timeout=10)) in OK_OR_INVALID


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash_the_server(channel: grpc.Channel, data: bytes) -> None:
    """Bytes that are no message are INVALID_ARGUMENT (read by the error interceptor, not
    grpcio's deserializer, which answered INTERNAL); bytes that do parse get the same answers
    as any request. Either way the server keeps answering health checks."""
    for method in ("Place", "Verify", "Explain"):
        raw = channel.unary_unary(f"/placement.v1.PlacementService/{method}")
        code = status_code(lambda raw=raw: raw(data, timeout=10))  # type: ignore[misc]
        assert code in OK_OR_INVALID, (method, code)
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
