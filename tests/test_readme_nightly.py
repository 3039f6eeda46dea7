"""The README's nightly rebalance section shows real commands and a changes file that fits the mixed fleet."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from fleetplace.cli import build_parser
from placement.changes import change_errors
from tests.builders import REPO
from wire.files import load_changes, load_problem


def _section() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("## The nightly rebalance\n", 1)[1].split("\n## ", 1)[0]


def _commands() -> list[list[str]]:
    (block,) = re.findall(r"```sh\n(.*?)```", _section(), flags=re.S)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_every_fleetplace_command_of_the_section_parses() -> None:
    commands = [c[1:] for c in _commands() if c[0] == "fleetplace"]
    assert {c[0] for c in commands} == {"rebalance", "history", "show", "diff", "report"}
    for args in commands:
        build_parser().parse_args(args)  # exits 2 on an unknown flag or subcommand


def test_its_changes_file_fits_the_mixed_fleet(tmp_path: Path) -> None:
    (printf,) = [c for c in _commands() if c[0] == "printf"]
    path = tmp_path / printf[-1]
    path.write_text(printf[1].replace("\\n", "\n"))
    changes = load_changes(str(path))
    assert changes.drain_nodes and changes.rescale_workloads
    assert change_errors(load_problem(REPO / "datasets" / "mixed"), changes) == []
