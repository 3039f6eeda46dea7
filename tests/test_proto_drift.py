"""The proto and the domain types stay in step, and the committed generated code is up to date."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from placement.core import domain
from placement.core.verify import Violation
from placement.exact.backends import base
from tests.builders import REPO
from wire.convert import enum_prefix
from wire.gen.placement.v1 import placement_pb2 as pb

GENERATED = [
    "wire/gen/__init__.py",
    "wire/gen/placement/__init__.py",
    "wire/gen/placement/v1/__init__.py",
    "wire/gen/placement/v1/placement_pb2.py",
    "wire/gen/placement/v1/placement_pb2.pyi",
    "wire/gen/placement/v1/placement_pb2_grpc.py",
]

# Domain dataclass -> proto message, where the names differ.
MESSAGE_FOR = {"Problem": "PlaceRequest"}

# The allowed differences, each with its reason. (dataclass, field): why.
PROTO_ONLY = {
    ("NodeBudget", "it_w"): "output only: NodeBudget.it_w is a derived property in the domain",
}
DOMAIN_ONLY: dict[tuple[str, str], str] = {}


def _domain_dataclasses() -> list[type]:
    return [
        obj
        for _, obj in inspect.getmembers(domain, inspect.isclass)
        if dataclasses.is_dataclass(obj) and obj.__module__ == domain.__name__
    ]


def _domain_enums() -> list[type[enum.Enum]]:
    return [
        obj
        for _, obj in inspect.getmembers(domain, inspect.isclass)
        if issubclass(obj, enum.Enum) and obj.__module__ == domain.__name__
    ]


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(
        ["bash", str(REPO / "scripts/gen_proto.sh"), str(tmp_path)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    stale = [rel for rel in GENERATED if (tmp_path / rel).read_bytes() != (REPO / rel).read_bytes()]
    assert not stale, f"run scripts/gen_proto.sh and commit: {stale} differ from the proto"


def test_generated_code_imports_under_server_gen() -> None:
    text = (REPO / "wire/gen/placement/v1/placement_pb2_grpc.py").read_text()
    assert "from wire.gen.placement.v1 import placement_pb2" in text
    assert pb.DESCRIPTOR.package == "placement.v1"


def test_every_domain_dataclass_has_a_message() -> None:
    classes = _domain_dataclasses()
    assert len(classes) >= 20  # the discovery itself works
    missing = [
        c.__name__
        for c in classes
        if MESSAGE_FOR.get(c.__name__, c.__name__) not in pb.DESCRIPTOR.message_types_by_name
    ]
    assert not missing


@pytest.mark.parametrize("cls", [*_domain_dataclasses(), base.Progress, Violation], ids=lambda c: c.__name__)
def test_message_fields_equal_dataclass_fields(cls: type) -> None:
    name = cls.__name__
    message = pb.DESCRIPTOR.message_types_by_name[MESSAGE_FOR.get(name, name)]
    proto_fields = {f.name for f in message.fields}
    domain_fields = {f.name for f in dataclasses.fields(cls)}
    extra = {f for f in proto_fields - domain_fields if (name, f) not in PROTO_ONLY}
    missing = {f for f in domain_fields - proto_fields if (name, f) not in DOMAIN_ONLY}
    assert not extra, f"{name}: proto fields not in the dataclass: {extra}"
    assert not missing, f"{name}: dataclass fields not in the proto: {missing}"


def test_allowed_differences_are_real() -> None:
    """Each documented exception still exists, so the list cannot rot."""
    for (name, fname), _why in PROTO_ONLY.items():
        cls = getattr(domain, name)
        assert fname not in {f.name for f in dataclasses.fields(cls)}
        assert fname in pb.DESCRIPTOR.message_types_by_name[name].fields_by_name
        assert isinstance(inspect.getattr_static(cls, fname), property)


@pytest.mark.parametrize("enum_cls", _domain_enums(), ids=lambda c: c.__name__)
def test_enum_values_equal_domain_names(enum_cls: type[enum.Enum]) -> None:
    proto_enum = pb.DESCRIPTOR.enum_types_by_name[enum_cls.__name__]
    prefix = enum_prefix(enum_cls)
    names = [v.name for v in proto_enum.values]
    assert proto_enum.values_by_number[0].name == prefix + "UNSPECIFIED"
    assert all(n.startswith(prefix) for n in names)
    suffixes = {n[len(prefix) :] for n in names} - {"UNSPECIFIED"}
    assert suffixes == set(enum_cls.__members__)


def test_enum_prefix_matches_the_house_convention() -> None:
    assert enum_prefix(domain.SiteKind) == "SITE_KIND_"
    assert enum_prefix(domain.SpreadLevel) == "SPREAD_LEVEL_"
    assert enum_prefix(domain.Backend) == "BACKEND_"
    assert pb.Redundancy.Value("REDUNDANCY_TWO_N") == 3
