"""The README's schema example is a real input: it loads, validates and plans."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from placement import solve
from placement.core.verify import verify
from tests.builders import REPO
from wire.files import load_problem

README = REPO / "README.md"


def test_readme_yaml_example_plans(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows a YAML example"
    path = tmp_path / "example.yaml"
    path.write_text(blocks[0])
    problem = load_problem(path)
    assert [w.name for w in problem.workloads] == ["llama-70b-chat", "embeddings"]
    problem = replace(problem, options=replace(problem.options, time_limit_s=10))
    plan = solve(problem)
    assert verify(problem, plan) == []
    assert {p.workload for p in plan.placements} == {"llama-70b-chat", "embeddings"}
