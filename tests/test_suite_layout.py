"""The test suite's own layout: shared code in one place, no test file importing another, and a
registered ``slow`` marker that ``run.sh`` and CI do not filter out."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = ("builders.py", "oracles.py", "mutations.py", "server_support.py", "conftest.py")


def imported_test_modules(source: str) -> list[str]:
    """The modules named ``test_*`` that ``source`` imports, at any depth (a function body too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [base] if node.module else []
            if node.level or node.module == "tests":  # from . import test_x, from tests import test_x
                names += [f"{base}.{a.name}".replace("..", ".") for a in node.names]
        else:
            continue
        found += [n for n in names if n.rsplit(".", 1)[-1].startswith("test_")]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("from tests.builders import fleet, node", [], id="a-shared-module-is-fine"),
        pytest.param("from placement.core import testing", [], id="a-library-module-is-fine"),
        pytest.param(
            "from tests.test_oracle import brute_force", ["tests.test_oracle"], id="from-a-test-file"
        ),
        pytest.param("import tests.test_oracle", ["tests.test_oracle"], id="import-a-test-file"),
        pytest.param("from tests import test_oracle", ["tests.test_oracle"], id="from-the-tests-package"),
        pytest.param("from .test_oracle import brute_force", [".test_oracle"], id="relative-import"),
        pytest.param("from . import test_oracle", [".test_oracle"], id="relative-package-import"),
        pytest.param(
            "def f():\n    from tests.test_fgd import frac\n", ["tests.test_fgd"], id="inside-a-function"
        ),
    ],
)
def test_imported_test_modules(source: str, expected: list[str]) -> None:
    assert imported_test_modules(source) == expected


def test_no_test_file_imports_from_another() -> None:
    files = sorted(TESTS.glob("test_*.py")) + [TESTS / name for name in SHARED]
    offenders = {f.name: imported_test_modules(f.read_text()) for f in files if f.exists()}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def _top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_no_test_file_defines_a_shared_builder_again() -> None:
    """A test file may bind a builder's result (``GPU = gpu_g(...)``) but not define a shared name."""
    shared = set().union(*(_top_level_names(TESTS / name) for name in SHARED if (TESTS / name).exists()))
    again = {
        f.name: sorted(_top_level_names(f) & shared)
        for f in sorted(TESTS.glob("test_*.py"))
        if f.name != Path(__file__).name
    }
    assert {name: names for name, names in again.items() if names} == {}


def test_the_slow_marker_is_registered_and_strict(pytestconfig: pytest.Config) -> None:
    registered = [line.split(":", 1)[0].strip() for line in pytestconfig.getini("markers")]
    assert "slow" in registered
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()  # a misspelt marker is an error


def test_run_sh_and_ci_run_the_slow_tests_too() -> None:
    for script in (REPO / "run.sh", REPO / ".ci" / "run"):
        calls = [line.split("pytest", 1)[1] for line in script.read_text().splitlines() if "pytest" in line]
        assert all(" -m " not in args and "slow" not in args for args in calls), (script, calls)
