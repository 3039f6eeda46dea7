"""docs/ARCHITECTURE.md maps every module, and the library's imports run the way it says.

* The module map (the "Module map" section's table rows) names every ``.py`` file under the
  mapped packages; a package's ``__init__.py`` is named by its folder (``placement/core/``),
  and ``wire/gen/`` stands for the generated code under it. Every path the map names exists.
* ``placement/core`` imports only ``placement.core``; nothing in ``placement/`` imports grpc,
  ``wire`` or ``server`` (lazy imports inside functions included).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGES = ("placement", "wire", "server", "fleetplace", "importers", "benchmarks")
GENERATED = "wire/gen/"


def map_paths(text: str) -> list[str]:
    """The paths named in the first column of the module map's table rows."""
    match = re.search(r"^## Module map\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, "docs/ARCHITECTURE.md has a '## Module map' section"
    return re.findall(r"^\| `([^`]+)` \|", match.group(1), flags=re.M)


def covered(module: str, named: set[str]) -> bool:
    """Whether a module file (a path relative to the root) is named by the map."""
    if module.startswith(GENERATED):
        return GENERATED in named
    if module.endswith("/__init__.py"):
        folder = module[: -len("__init__.py")]
        return folder in named or module in named
    return module in named


def modules() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    """Every absolute module an import statement of the file names, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # ``from placement import core`` names the subpackage in the alias
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def leaves_core(name: str) -> bool:
    """An import a ``placement/core`` module may not make: another ``placement`` subpackage."""
    parts = name.split(".")
    return parts[0] == "placement" and name != "placement" and parts[:2] != ["placement", "core"]


def at_edge(name: str) -> bool:
    """An import the library may not make: grpc, the wire schema or the server."""
    return name.split(".")[0] in ("grpc", "grpc_health", "grpc_reflection", "wire", "server")


def breaches(folder: Path, rule: Callable[[str], bool]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in sorted(folder.rglob("*.py"))
        for line, name in imported(p)
        if rule(name)
    ]


def test_map_names_every_module() -> None:
    named = set(map_paths(ARCHITECTURE.read_text()))
    missing = [m for m in modules() if not covered(m, named)]
    assert missing == [], f"modules missing from the module map of docs/ARCHITECTURE.md: {missing}"


def test_map_names_only_existing_files() -> None:
    stale = [p for p in map_paths(ARCHITECTURE.read_text()) if not (ROOT / p).exists()]
    assert stale == [], f"the module map names paths that do not exist: {stale}"


def test_placement_core_imports_only_core() -> None:
    assert breaches(ROOT / "placement" / "core", leaves_core) == []


def test_library_never_imports_the_edge() -> None:
    assert breaches(ROOT / "placement", at_edge) == []


# The checks themselves, on small texts, so that each can be seen to fail.
MAP = """# Title
## Module map
| module | owns |
| --- | --- |
| `placement/core/` | the room |
| `placement/core/state.py` | the state |
| `wire/gen/` | generated |
| `placement/nothing.py` | stale |

## Rules of a valid plan
| `placement/after.py` | not in the map's section |
"""


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("placement/core/state.py", True),
        ("placement/core/__init__.py", True),  # by its folder
        ("wire/gen/placement/v1/placement_pb2.py", True),  # by wire/gen/
        ("placement/core/verify.py", False),
        ("placement/after.py", False),  # named outside the section
        ("placement/exact/__init__.py", False),  # its folder is not named
    ],
    ids=["named", "init-by-folder", "generated", "missing", "outside-section", "init-missing"],
)
def test_coverage_rule(module: str, expected: bool) -> None:
    assert covered(module, set(map_paths(MAP))) is expected


@pytest.mark.parametrize(
    ("source", "core", "edge"),
    [
        ("from placement.core.domain import Problem\nimport placement.core.state\n", False, False),
        ("import placement\n", False, False),  # the package itself (for its path), not a subpackage
        ("from placement.run.solve import solve\n", True, False),
        ("def f():\n    from placement.exact import decode\n", True, False),  # lazy imports count
        ("from placement import run\n", True, False),
        ("import grpc\n", False, True),
        ("from wire.gen.placement.v1 import placement_pb2\n", False, True),
        ("def f():\n    from server.errors import ServiceError\n", False, True),
    ],
    ids=["core-only", "package-itself", "run", "lazy-exact", "from-package", "grpc", "wire", "lazy-server"],
)
def test_import_rules(tmp_path: Path, source: str, core: bool, edge: bool) -> None:
    (tmp_path / "probe.py").write_text(source)
    names = [name for _, name in imported(tmp_path / "probe.py")]
    assert (any(map(leaves_core, names)), any(map(at_edge, names))) == (core, edge)


def test_map_paths_reads_only_the_section() -> None:
    assert map_paths(MAP) == [
        "placement/core/",
        "placement/core/state.py",
        "wire/gen/",
        "placement/nothing.py",
    ]
