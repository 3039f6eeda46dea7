"""Input and output files: the ``placement.v1`` JSON mapping, as JSON or YAML.

``load_request(path)`` reads one ``.json``/``.yaml``/``.yml`` file, or a folder of them
(sorted by name) merged into one ``PlaceRequest``:

* repeated fields are concatenated in file order (``workloads``, ``fleet.nodes``, ...);
* messages whose fields are all repeated (the request itself and ``fleet``) are merged
  field by field, so one file may hold the sites and another the nodes;
* any other field (``options``, a scalar) may be set by at most one file;
* a file that is a plan (``placements`` and only ``Plan`` fields: ``plan --out`` left beside
  the input) is skipped with a warning.

Every problem is an ``InputError`` whose ``FieldError`` paths start with the file name,
e.g. ``fleet.json: fleet.nodes[3].gpuCount``. Before ``json_format.ParseDict`` runs, the
parsed document is walked against the message descriptors so that every unknown field
and every value of the wrong type is reported at once with its path (ParseDict stops at
the first). ``load_problem`` goes on to convert and validate (conversion and validation problems are
reported together), mapping the paths of the merged request back to the file and the index
within it that the user wrote.

One run reports everything it can find: the walk hands ParseDict a cleaned copy (unknown
fields and badly typed values left out, a number given for a name read as its text, a
literal ``NaN`` or ``1e400`` passed on as the JSON mapping's ``"NaN"``/``"Infinity"`` so that
validation reports it once, as not finite), so the files with type errors are still merged
(merge conflicts) and validated (references, ranges). Validation problems inside an item
that had a type error (``fleet.nodes[3]`` after ``fleet.nodes[3].gpuCount: "eight"``) are left
out, since they would only echo the value that was left out. A file that does not parse
at all cannot be merged: its parse error and the others' type and merge problems are
reported, and the checks that need the whole request are not run.

Writing: ``to_json`` is the one printer. Outputs (plans, responses) print every field,
zeros included (replica 0, moves 0, ``on: false``), so that scripts need no defaults;
requests (``generate``, the bundled datasets) keep the compact form a person writes.
64-bit integers are JSON strings, as the proto3 JSON mapping prescribes.
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

from placement.changes import FleetChanges
from placement.core.domain import Problem
from placement.core.errors import FieldError, InputError
from placement.core.validate import QUOTE_CHARS, quote, validate_request
from wire.convert import changes_and_errors_from_proto, problem_and_errors_from_request
from wire.gen.placement.v1 import placement_pb2 as pb

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
            raise _DuplicateKeyError(f"duplicate key {quote(key)} in one object")
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
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {quote(key)}",
                    key_node.start_mark,
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
    kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
    try:
        if kind == "JSON":
            return json.loads(text, object_pairs_hook=_json_object)
        return yaml.load(text, Loader=_StrictYamlLoader)  # a SafeLoader subclass
    except json.JSONDecodeError as e:
        raise InputError(
            [FieldError(name, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]
        ) from e
    except _DuplicateKeyError as e:
        raise InputError([FieldError(name, f"invalid JSON: {e}")]) from e
    except RecursionError as e:
        raise InputError([FieldError(name, f"invalid {kind}: lists or objects nested too deeply")]) from e
    except ValueError as e:  # Python's int() refuses numbers of more than 4,300 digits
        raise InputError([FieldError(name, f"invalid {kind}: a number with too many digits")]) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError([FieldError(name, f"invalid YAML{where}: {e.problem or e.context}")]) from e
    except yaml.YAMLError as e:
        raise InputError([FieldError(name, f"invalid YAML: {e}")]) from e


def _json_path(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


_LEAVE_OUT = object()  # a value the cleaned copy does not carry

# what a badly typed item of a repeated field becomes, so that the items after it keep their index
_PLACEHOLDER: dict[int, Any] = {
    FieldDescriptor.CPPTYPE_ENUM: 0,
    FieldDescriptor.CPPTYPE_BOOL: False,
    FieldDescriptor.CPPTYPE_STRING: "",
    FieldDescriptor.CPPTYPE_DOUBLE: 0.0,
    FieldDescriptor.CPPTYPE_FLOAT: 0.0,
    **dict.fromkeys(_INT_RANGES, 0),
}


def _close_match(word: str, choices: list[str]) -> str:
    if len(word) > QUOTE_CHARS:
        return ""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _float_for_parser(value: int | float | str) -> Any:
    """A number as ParseDict takes it; not finite: the JSON mapping's "NaN", "Infinity", "-Infinity"."""
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return value if not isinstance(value, str) else x


def _check_value(fd: FieldDescriptor, value: Any, path: str, errors: list[tuple[str, str]]) -> Any:
    """Append "path: message" for a single (non-repeated) value of field ``fd``; return the value for
    ParseDict, or ``_LEAVE_OUT``."""
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE and fd.message_type is not None:
        return _walk(value, fd.message_type, path, errors)
    if cpp == FieldDescriptor.CPPTYPE_ENUM and fd.enum_type is not None:
        names = [v.name for v in fd.enum_type.values]
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value in fd.enum_type.values_by_number:
            return value
        text = str(value)[: QUOTE_CHARS + 1]
        suffix = [n for n in names if n.endswith("_" + text.upper())]
        hint = f" (did you mean {suffix[0]}?)" if suffix else _close_match(text, names)
        errors.append((path, f"unknown value {quote(value)}{hint}; expected one of {', '.join(names)}"))
        return _LEAVE_OUT
    if cpp in _INT_RANGES:
        number: Any = value
        if isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                number = None
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            errors.append((path, f"expected a whole number, got {quote(value)}"))
            return _LEAVE_OUT
        low, high = _INT_RANGES[cpp]
        if not low <= number <= high:
            errors.append((path, f"value {quote(number)} out of range {low}..{high}"))
            return _LEAVE_OUT
        return value
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        if not isinstance(value, bool) and isinstance(value, int | float | str):
            try:
                return _float_for_parser(value)
            except OverflowError:  # a whole number beyond any float
                errors.append((path, f"number too large, got {quote(value)}"))
                return _LEAVE_OUT
            except ValueError:
                pass
        errors.append((path, f"expected a number, got {quote(value)}"))
        return _LEAVE_OUT
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if isinstance(value, bool):
            return value
        errors.append((path, f"expected true or false, got {quote(value)}"))
        return _LEAVE_OUT
    if cpp == FieldDescriptor.CPPTYPE_STRING and not isinstance(value, str):
        errors.append((path, f"expected a string, got {quote(value)} (quote it)"))
        # YAML reads an unquoted 4090 as a number: keep its text, so that references to it resolve
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else _LEAVE_OUT
    return value


def _walk(doc: Any, desc: Descriptor, path: str, errors: list[tuple[str, str]]) -> dict[str, Any]:
    """Every unknown field and badly typed value in ``doc`` as (path, message); returns the cleaned
    copy of ``doc`` that ParseDict can read (``{}`` when ``doc`` is no object)."""
    if not isinstance(doc, dict):
        what = path or "the document"
        errors.append((what, f"expected an object with fields of {desc.name}, got {type(doc).__name__}"))
        return {}
    by_name: dict[str, FieldDescriptor] = {}
    for fd in desc.fields:
        by_name[fd.name] = fd
        by_name[fd.json_name] = fd
    clean: dict[str, Any] = {}
    for key, value in doc.items():
        found = by_name.get(key) if isinstance(key, str) else None
        if found is None:
            known = [f.json_name for f in desc.fields]
            hint = _close_match(str(key), known)
            shown = str(key) if len(str(key)) <= QUOTE_CHARS else str(key)[:QUOTE_CHARS] + "..."
            errors.append(
                (
                    _json_path(path, shown),
                    f"unknown field {quote(key)} in {desc.name}{hint}; known fields: {', '.join(known)}",
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
            items = []
            for i, item in enumerate(value):
                got = _LEAVE_OUT
                if item is None:
                    errors.append((f"{fpath}[{i}]", "empty list item (null)"))
                else:
                    got = _check_value(fd, item, f"{fpath}[{i}]", errors)
                items.append(_PLACEHOLDER.get(fd.cpp_type, {}) if got is _LEAVE_OUT else got)
            clean[key] = items
        else:
            got = _check_value(fd, value, fpath, errors)
            if got is not _LEAVE_OUT:
                clean[key] = got
    return clean


@dataclass
class _Parsed:
    """One file: its message (None when the file does not parse) and its walk problems."""

    name: str
    message: Message | None
    problems: list[FieldError]


def _parse_file(path: Path, cls: type[M], in_folder: bool = False) -> _Parsed | None:
    """The file's message and its problems; None for a plan in a request's folder (skipped)."""
    try:
        doc = _parse_document(path)
    except InputError as e:
        return _Parsed(path.name, None, list(e.errors))
    if doc is None:
        return _Parsed(path.name, None, [FieldError(path.name, "the file is empty")])
    if in_folder and cls is pb.PlaceRequest and _is_plan(doc):
        log.warning("%s is a plan, not part of the request: skipped", path)
        return None
    problems: list[tuple[str, str]] = []
    clean = _walk(doc, cls.DESCRIPTOR, "", problems)  # type: ignore[arg-type]
    found = [FieldError(f"{path.name}: {where}", message) for where, message in problems]
    try:
        return _Parsed(path.name, json_format.ParseDict(clean, cls(), ignore_unknown_fields=False), found)
    except json_format.ParseError as e:  # a case the walk does not cover
        message = re.sub(r"(Failed to parse \w+ field: )+", "", str(e)).strip()
        return _Parsed(path.name, None, [*found, FieldError(path.name, message)])


def _is_plan(doc: Any) -> bool:
    """A document of the ``Plan`` message (its placements, and no field a request has): an output
    left in the input folder (``plan --out`` next to the input), not a part of the request."""
    if not isinstance(doc, dict) or "placements" not in doc:
        return False
    plan = {f.json_name for f in pb.Plan.DESCRIPTOR.fields} | {f.name for f in pb.Plan.DESCRIPTOR.fields}
    return set(doc) <= plan


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


@dataclass
class _Loaded:
    """A merged message and every problem found on the way, none raised yet."""

    message: Message
    origins: _Origins
    errors: list[FieldError]  # parse, type and merge problems, paths starting with the file
    unreliable: list[str]  # "file: item" prefixes whose values had type errors
    complete: bool  # every file parsed and no whole list or message was left out: validation can run
    parsed_any: bool  # at least one file parsed: there was more to check


def _unreliable_item(path: str) -> str | None:
    """``f.json: fleet.nodes[3].gpuCount`` -> ``f.json: fleet.nodes[3]``: the item a type error makes
    unreliable; ``options`` for the options; None when it is more than one item (a list, the fleet)."""
    name, sep, rest = path.partition(": ")
    if not sep:
        return None
    m = re.match(r"^[A-Za-z.]*?\[\d+\]", rest)
    if m:
        return f"{name}: {m.group(0)}"
    if rest == "options" or rest.startswith("options."):
        return f"{name}: options"
    return None


def _load(path: str | os.PathLike[str], cls: type[M]) -> _Loaded:
    p = Path(path)
    files = _input_files(p)
    origins = _Origins(label=files[0].name if len(files) == 1 else (p.name or str(p)), single=len(files) == 1)
    errors: list[FieldError] = []
    unreliable: list[str] = []
    complete = True
    parsed: list[_Parsed] = []
    for f in files:
        got = _parse_file(f, cls, in_folder=p.is_dir())
        if got is None:
            continue
        errors.extend(got.problems)
        complete &= got.message is not None
        for e in got.problems:
            item = _unreliable_item(e.path)
            if item is None:
                complete = False
            else:
                unreliable.append(item)
        parsed.append(got)
    merged = cls()
    for got in parsed:
        if got.message is not None:
            _merge(merged, got.message, got.name, "", origins, errors)
    log.debug("loaded %s from %d file(s) under %s", cls.DESCRIPTOR.name, len(files), p)
    parsed_any = any(got.message is not None for got in parsed)
    return _Loaded(merged, origins, errors, unreliable, complete, parsed_any)


def load_request(path: str | os.PathLike[str]) -> pb.PlaceRequest:
    """A ``PlaceRequest`` from a JSON/YAML file or a folder of them. Raises ``InputError``."""
    loaded = _load(path, pb.PlaceRequest)
    if loaded.errors:
        raise InputError(loaded.errors)
    return loaded.message  # type: ignore[return-value]


def load_plan(path: str | os.PathLike[str]) -> pb.Plan:
    """A ``Plan`` message from a JSON/YAML file or a folder of them. Raises ``InputError``."""
    loaded = _load(path, pb.Plan)
    if loaded.errors:
        raise InputError(loaded.errors)
    return loaded.message  # type: ignore[return-value]


def load_changes(path: str | os.PathLike[str]) -> FleetChanges:
    """A ``FleetChanges`` file (JSON/YAML, the proto's JSON mapping) as the domain changes. Raises
    ``InputError`` with every problem of the file and its conversion; ``placement.changes`` checks
    the changes against the input."""
    loaded = _load(path, pb.FleetChanges)
    if loaded.errors:
        raise InputError(loaded.errors)
    changes, errors = changes_and_errors_from_proto(loaded.message)  # type: ignore[arg-type]
    if errors:
        raise InputError(errors)
    return changes


def load_problem(path: str | os.PathLike[str]) -> Problem:
    """Load, convert and validate: a valid ``Problem``, or ``InputError`` with every problem found
    (the files' problems first, then conversion and validation, see the module docstring)."""
    loaded = _load(path, pb.PlaceRequest)
    errors = list(loaded.errors)
    if not loaded.complete:
        if loaded.parsed_any:
            errors.append(
                FieldError(
                    loaded.origins.label,
                    "references, ranges and the rules between fields were not checked: "
                    "a file does not parse, or a whole list or message of it was left out",
                )
            )
        raise InputError(errors)
    problem, found = problem_and_errors_from_request(loaded.message)  # type: ignore[arg-type]
    found += validate_request(problem)
    for e in loaded.origins.relabel(tuple(found)):
        if not any(e.path == u or e.path.startswith((u + ".", u + "[")) for u in loaded.unreliable):
            errors.append(e)
    if errors:
        raise InputError(errors)
    return problem


# ----------------------------------------------------------------------- writing


# Inputs a person writes and reads: printed without the fields left at zero
_COMPACT = (pb.PlaceRequest.DESCRIPTOR.full_name, pb.Fleet.DESCRIPTOR.full_name)


def to_json(message: Message) -> str:
    """The JSON mapping of a message (lowerCamelCase names, indent 2), ending with a newline.

    Every output message prints every field, zeros and empty lists included; fields with
    presence (``optional``, messages) only when set. Requests keep the compact form.
    64-bit integers are strings (the proto3 JSON mapping).
    """
    every_field = message.DESCRIPTOR.full_name not in _COMPACT
    return (
        json_format.MessageToJson(
            message,
            preserving_proto_field_name=False,
            indent=2,
            always_print_fields_with_no_presence=every_field,
        )
        + "\n"
    )


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
