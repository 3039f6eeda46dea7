"""Input and output files: the ``placement.v1`` JSON mapping, as JSON or YAML.

``load_request(path)`` reads one ``.json``/``.yaml``/``.yml`` file, or a folder of them
(sorted by name) merged into one ``PlaceRequest``:

* repeated fields are concatenated in file order (``workloads``, ``fleet.nodes``, ...);
* messages whose fields are all repeated (the request itself and ``fleet``) are merged
  field by field, so one file may hold the sites and another the nodes;
* any other field (``options``, a scalar) may be set by at most one file.

Every problem is an ``InputError`` whose ``FieldError`` paths start with the file name,
e.g. ``fleet.json: fleet.nodes[3].gpuCount``. Before ``json_format.ParseDict`` runs, the
parsed document is walked against the message descriptors so that every unknown field
and every value of the wrong type is reported at once with its path (ParseDict stops at
the first). ``load_problem`` goes on to convert and validate (conversion and validation problems are
reported together), mapping the paths of the merged request back to the file and the index
within it that the user wrote.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from placement.domain import Problem
from placement.errors import FieldError, InputError
from placement.validate import validate
from server.convert import problem_and_errors_from_request
from server.gen.placement.v1 import placement_pb2 as pb

log = logging.getLogger(__name__)

SUFFIXES = (".json", ".yaml", ".yml")

M = TypeVar("M", bound=Message)

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


# ---------------------------------------------------------------------- reading


def _input_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise InputError([FieldError(path.name or str(path), "folder has no .json, .yaml or .yml files")])
        return files
    if not path.exists():
        raise InputError([FieldError(path.name or str(path), f"no such file or folder: {path}")])
    if path.suffix.lower() not in SUFFIXES:
        raise InputError([FieldError(path.name, "expected a .json, .yaml or .yml file")])
    return [path]


class _DuplicateKeyError(ValueError):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


class _StrictYamlLoader(yaml.SafeLoader):
    """A safe loader that refuses a key repeated in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_document(path: Path) -> Any:
    """The JSON or YAML document of a file; malformed input is an InputError naming the line."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([FieldError(name, f"cannot read the file: {e}")]) from e
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_json_object)
        except json.JSONDecodeError as e:
            raise InputError(
                [FieldError(name, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]
            ) from e
        except _DuplicateKeyError as e:
            raise InputError([FieldError(name, f"invalid JSON: {e}")]) from e
    try:
        return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError([FieldError(name, f"invalid YAML{where}: {e.problem or e.context}")]) from e
    except yaml.YAMLError as e:
        raise InputError([FieldError(name, f"invalid YAML: {e}")]) from e


def _json_path(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _check_value(fd: FieldDescriptor, value: Any, path: str, errors: list[tuple[str, str]]) -> None:
    """Append "path: message" for a single (non-repeated) value of field ``fd``."""
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE and fd.message_type is not None:
        _walk(value, fd.message_type, path, errors)
    elif cpp == FieldDescriptor.CPPTYPE_ENUM and fd.enum_type is not None:
        names = [v.name for v in fd.enum_type.values]
        if isinstance(value, str) and value in names:
            return
        if isinstance(value, int) and not isinstance(value, bool) and value in fd.enum_type.values_by_number:
            return
        suffix = [n for n in names if n.endswith("_" + str(value).upper())]
        close = suffix or difflib.get_close_matches(str(value), names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        errors.append((path, f"unknown value {value!r}{hint}; expected one of {', '.join(names)}"))
    elif cpp in _INT_RANGES:
        number: Any = value
        if isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                number = None
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            errors.append((path, f"expected a whole number, got {value!r}"))
            return
        low, high = _INT_RANGES[cpp]
        if not low <= number <= high:
            errors.append((path, f"value {number} out of range {low}..{high}"))
    elif cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            errors.append((path, f"expected a number, got {value!r}"))
        elif isinstance(value, str):
            try:
                float(value)
            except ValueError:
                errors.append((path, f"expected a number, got {value!r}"))
    elif cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            errors.append((path, f"expected true or false, got {value!r}"))
    elif cpp == FieldDescriptor.CPPTYPE_STRING and not isinstance(value, str):
        errors.append((path, f"expected a string, got {value!r} (quote it)"))


def _walk(doc: Any, desc: Descriptor, path: str, errors: list[tuple[str, str]]) -> None:
    """Every unknown field and badly typed value in ``doc`` as "path: message" strings."""
    if not isinstance(doc, dict):
        what = path or "the document"
        errors.append((what, f"expected an object with fields of {desc.name}, got {type(doc).__name__}"))
        return
    by_name: dict[str, FieldDescriptor] = {}
    for fd in desc.fields:
        by_name[fd.name] = fd
        by_name[fd.json_name] = fd
    for key, value in doc.items():
        found = by_name.get(key) if isinstance(key, str) else None
        if found is None:
            known = [f.json_name for f in desc.fields]
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            errors.append(
                (
                    _json_path(path, str(key)),
                    f"unknown field {key!r} in {desc.name}{hint}; known fields: {', '.join(known)}",
                )
            )
            continue
        fd = found
        fpath = _json_path(path, fd.json_name)
        if value is None:
            continue  # null leaves the field unset
        if fd.is_repeated:
            if not isinstance(value, list):
                errors.append((fpath, f"expected a list, got {type(value).__name__}"))
                continue
            for i, item in enumerate(value):
                if item is None:
                    errors.append((f"{fpath}[{i}]", "empty list item (null)"))
                else:
                    _check_value(fd, item, f"{fpath}[{i}]", errors)
        else:
            _check_value(fd, value, fpath, errors)


def _parse_file(path: Path, cls: type[M]) -> M:
    doc = _parse_document(path)
    if doc is None:
        raise InputError([FieldError(path.name, "the file is empty")])
    problems: list[tuple[str, str]] = []
    _walk(doc, cls.DESCRIPTOR, "", problems)  # type: ignore[arg-type]
    if problems:
        raise InputError([FieldError(f"{path.name}: {where}", message) for where, message in problems])
    try:
        return json_format.ParseDict(doc, cls(), ignore_unknown_fields=False)
    except json_format.ParseError as e:  # a case the walk does not cover
        message = re.sub(r"(Failed to parse \w+ field: )+", "", str(e)).strip()
        raise InputError([FieldError(path.name, message)]) from e


# ----------------------------------------------------------------------- merging


@dataclass
class _Origins:
    """Which file each part of a merged message came from, to map paths back to files."""

    label: str  # the file, or the folder when there are several files
    single: bool
    starts: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # repeated path -> (start, file)
    owners: dict[str, str] = field(default_factory=dict)  # singular path -> file

    def locate(self, path: str) -> str:
        """``fleet.nodes[7].site`` of the merged message -> ``b.yaml: fleet.nodes[2].site``."""
        if self.single:
            return f"{self.label}: {path}"
        m = re.match(r"^([A-Za-z.]+)\[(\d+)\](.*)$", path)
        if m and m.group(1) in self.starts:
            index = int(m.group(2))
            start, name = 0, self.label
            for s, n in self.starts[m.group(1)]:
                if s <= index:
                    start, name = s, n
            return f"{name}: {m.group(1)}[{index - start}]{m.group(3)}"
        for key in sorted(self.owners, key=len, reverse=True):
            if path == key or path.startswith((key + ".", key + "[")):
                return f"{self.owners[key]}: {path}"
        return f"{self.label}: {path}"

    def relabel(self, errors: tuple[FieldError, ...]) -> list[FieldError]:
        return [FieldError(self.locate(e.path), e.message) for e in errors]


def _is_container(desc: Descriptor) -> bool:
    return all(f.is_repeated for f in desc.fields)


def _merge(
    target: Message, src: Message, name: str, base: str, origins: _Origins, errors: list[FieldError]
) -> None:
    for fd, value in src.ListFields():
        path = _json_path(base, fd.json_name)
        if fd.is_repeated:
            container = getattr(target, fd.name)
            origins.starts.setdefault(path, []).append((len(container), name))
            container.extend(value)
        elif (
            fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
            and fd.message_type is not None
            and _is_container(fd.message_type)
        ):
            _merge(getattr(target, fd.name), value, name, path, origins, errors)
        elif path in origins.owners:
            errors.append(
                FieldError(
                    f"{name}: {path}", f"already set in {origins.owners[path]}; set it in one file only"
                )
            )
        else:
            origins.owners[path] = name
            if fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                getattr(target, fd.name).CopyFrom(value)
            else:
                setattr(target, fd.name, value)


def _load(path: str | os.PathLike[str], cls: type[M]) -> tuple[M, _Origins]:
    p = Path(path)
    files = _input_files(p)
    origins = _Origins(label=files[0].name if len(files) == 1 else (p.name or str(p)), single=len(files) == 1)
    errors: list[FieldError] = []
    parsed: list[tuple[Path, M]] = []
    for f in files:
        try:
            parsed.append((f, _parse_file(f, cls)))
        except InputError as e:
            errors.extend(e.errors)
    merged = cls()
    for f, m in parsed:
        _merge(merged, m, f.name, "", origins, errors)
    if errors:
        raise InputError(errors)
    log.debug("loaded %s from %d file(s) under %s", cls.DESCRIPTOR.name, len(files), p)
    return merged, origins


def load_request(path: str | os.PathLike[str]) -> pb.PlaceRequest:
    """A ``PlaceRequest`` from a JSON/YAML file or a folder of them. Raises ``InputError``."""
    return _load(path, pb.PlaceRequest)[0]


def load_plan(path: str | os.PathLike[str]) -> pb.Plan:
    """A ``Plan`` message from a JSON/YAML file or a folder of them. Raises ``InputError``."""
    return _load(path, pb.Plan)[0]


def load_problem(path: str | os.PathLike[str]) -> Problem:
    """Load, convert and validate: a valid ``Problem``, or ``InputError`` with every problem found."""
    msg, origins = _load(path, pb.PlaceRequest)
    problem, errors = problem_and_errors_from_request(msg)
    errors += validate(problem)
    if errors:
        raise InputError(origins.relabel(tuple(errors)))
    return problem


# ----------------------------------------------------------------------- writing


def to_json(message: Message) -> str:
    """The JSON mapping of a message (lowerCamelCase names, indent 2), ending with a newline."""
    return json_format.MessageToJson(message, preserving_proto_field_name=False, indent=2) + "\n"


def write_json_atomic(path: str | os.PathLike[str], message: Message) -> None:
    """Write ``message`` as JSON to ``path`` so that readers see the old file or the new, never half.

    The text goes to a temporary file in the same folder, is flushed to disk, then renamed over
    ``path`` (``os.replace`` is atomic on one file system).
    """
    target = Path(path)
    text = to_json(message)
    try:
        mode = target.stat().st_mode & 0o777  # keep the mode of the file being replaced
    except FileNotFoundError:
        mode = 0o644  # mkstemp creates 0600; a written request or plan is for others to read
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
