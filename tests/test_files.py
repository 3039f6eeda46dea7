"""Reading requests and plans from JSON/YAML files and folders; writing JSON atomically."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from placement.core.errors import InputError
from tests.builders import sample_plan, sample_problem
from wire.convert import plan_from_proto, plan_to_proto, request_from_problem
from wire.files import load_plan, load_problem, load_request, to_json, write_json_atomic


def sample_doc() -> dict[str, Any]:
    """The sample problem in the JSON mapping, as a user would write it."""
    return json_format.MessageToDict(request_from_problem(sample_problem()))


def write(path: Path, doc: Any) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(doc, indent=2))
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def error_lines(err: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(e) for e in err.value.errors]


# ---------------------------------------------------------------------- one file


@pytest.mark.parametrize("name", ["req.json", "req.yaml", "req.yml"])
def test_one_file_of_each_kind(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, sample_doc())
    assert load_request(path) == request_from_problem(sample_problem())
    assert load_problem(str(path)) == sample_problem()


def test_snake_case_names_are_accepted_too(tmp_path: Path) -> None:
    doc = {"workloads": [{"name": "w", "gpu_milli": 500, "min_replicas": 2}]}
    msg = load_request(write(tmp_path / "w.yaml", doc))
    assert (msg.workloads[0].gpu_milli, msg.workloads[0].min_replicas) == (500, 2)


def test_unknown_field_names_the_field_and_its_path(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["fleet"]["nodes"][1]["gpuCont"] = doc["fleet"]["nodes"][1].pop("gpuCount")
    doc["options"]["timeLimit"] = 5
    with pytest.raises(InputError) as err:
        load_request(write(tmp_path / "fleet.json", doc))
    lines = error_lines(err)
    assert len(lines) == 2
    assert lines[0].startswith("fleet.json: fleet.nodes[1].gpuCont: unknown field 'gpuCont'")
    assert "did you mean gpuCount" in lines[0]
    assert lines[1].startswith("fleet.json: options.timeLimit: unknown field")


@pytest.mark.parametrize(
    "field,value,path,word",
    [
        ("gpuCount", "eight", "fleet.nodes[0].gpuCount", "whole number"),
        ("gpuCount", 1.5, "fleet.nodes[0].gpuCount", "whole number"),
        ("gpuCount", 2**31, "fleet.nodes[0].gpuCount", "out of range"),
        ("hostPowerW", True, "fleet.nodes[0].hostPowerW", "whole number"),
        ("name", 17, "fleet.nodes[0].name", "expected a string"),
        ("state", "READY", "fleet.nodes[0].state", "did you mean NODE_STATE_READY"),
        ("state", "NODE_STATE_SLEEPING", "fleet.nodes[0].state", "unknown value"),
        ("site", ["s1"], "fleet.nodes[0].site", "expected a string"),
    ],
    ids=["word for int", "fraction for int", "int32 overflow", "bool for int", "int for string",
         "enum suffix only", "unknown enum", "list for string"],
)  # fmt: skip
def test_wrong_types_are_reported_with_paths(
    tmp_path: Path, field: str, value: Any, path: str, word: str
) -> None:
    doc = sample_doc()
    doc["fleet"]["nodes"][0][field] = value
    with pytest.raises(InputError) as err:
        load_request(write(tmp_path / "f.json", doc))
    assert [e.path for e in err.value.errors] == [f"f.json: {path}"]
    assert word in err.value.errors[0].message


def test_whole_numbers_written_as_floats_are_accepted(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["fleet"]["nodes"][0]["gpuCount"] = 8.0
    assert load_request(write(tmp_path / "f.json", doc)).fleet.nodes[0].gpu_count == 8


def test_repeated_field_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_request(write(tmp_path / "f.yaml", {"fleet": {"nodes": {"name": "n1"}}}))
    assert error_lines(err) == ["f.yaml: fleet.nodes: expected a list, got dict"]


def test_document_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_request(write(tmp_path / "f.yaml", [1, 2]))
    assert "expected an object" in error_lines(err)[0]


def test_malformed_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "workloads": [\n    {"name": "w",}\n  ]\n}\n')
    with pytest.raises(InputError) as err:
        load_request(path)
    [e] = err.value.errors
    assert e.path == "bad.json"
    assert "line 3" in e.message


def test_malformed_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workloads:\n  - name: w\n    gpus: [1, 2\n  - name: v\n")
    with pytest.raises(InputError) as err:
        load_request(path)
    [e] = err.value.errors
    assert e.path == "bad.yaml"
    assert "invalid YAML at line" in e.message


@pytest.mark.parametrize(
    "name,text",
    [
        ("dup.json", '{"workloads": [{"name": "a", "gpus": 1, "gpus": 2}]}'),
        ("dup.yaml", "workloads:\n  - name: a\n    gpus: 1\n    gpus: 2\n"),
    ],
)
def test_repeated_key_is_an_error_not_a_silent_overwrite(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_request(path)
    [e] = err.value.errors
    assert e.path == name
    assert "duplicate key 'gpus'" in e.message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError, match="empty"):
        load_request(path)


@pytest.mark.parametrize("name", ["missing.json", "missing_folder"])
def test_missing_path_is_an_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_request(tmp_path / name)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an input")
    with pytest.raises(InputError, match=r"no \.json"):
        load_request(tmp_path)


def test_other_suffix_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "req.toml"
    path.write_text("x = 1")
    with pytest.raises(InputError, match=r"expected a \.json"):
        load_request(path)


# ------------------------------------------------------------------------ folders


def split_sample(folder: Path) -> None:
    """The sample problem over four files; nodes and workloads split across two files each."""
    doc = sample_doc()
    fleet = doc["fleet"]
    write(folder / "10-types.yaml", {"fleet": {"gpuTypes": fleet["gpuTypes"], "regions": fleet["regions"]}})
    write(
        folder / "20-sites.json",
        {
            "fleet": {
                "sites": fleet["sites"],
                "powerDomains": fleet["powerDomains"],
                "links": fleet["links"],
                "nodes": fleet["nodes"][:2],
            },
            "workloads": doc["workloads"][:1],
        },
    )
    write(folder / "30-more.yml", {"fleet": {"nodes": fleet["nodes"][2:]}, "workloads": doc["workloads"][1:]})
    write(folder / "40-options.json", {"options": doc["options"]})


def test_folder_concatenates_in_name_order(tmp_path: Path) -> None:
    split_sample(tmp_path)
    assert load_problem(tmp_path) == sample_problem()


def test_a_plan_left_in_the_input_folder_is_skipped(tmp_path: Path) -> None:
    """``plan --out plan.json`` beside the input: the next run reads the request without it; a
    request file that names ``placements`` among request fields is still an error."""
    split_sample(tmp_path)
    (tmp_path / "plan.json").write_text(to_json(plan_to_proto(sample_plan())))
    assert load_problem(tmp_path) == sample_problem()
    write(tmp_path / "zz-odd.json", {"placements": [], "workloads": []})
    with pytest.raises(InputError) as err:
        load_request(tmp_path)
    assert error_lines(err)[0].startswith(
        "zz-odd.json: placements: unknown field 'placements' in PlaceRequest"
    )


def test_folder_options_set_by_two_files_is_an_error(tmp_path: Path) -> None:
    split_sample(tmp_path)
    write(tmp_path / "50-options.yaml", {"options": {"workers": 8}})
    with pytest.raises(InputError) as err:
        load_request(tmp_path)
    assert error_lines(err) == [
        "50-options.yaml: options: already set in 40-options.json; set it in one file only"
    ]


def test_folder_reports_problems_of_every_file(tmp_path: Path) -> None:
    split_sample(tmp_path)
    write(tmp_path / "60-bad.json", {"workloads": [{"nam": "x"}]})
    (tmp_path / "70-broken.json").write_text("{")
    with pytest.raises(InputError) as err:
        load_request(tmp_path)
    paths = [e.path for e in err.value.errors]
    assert paths == ["60-bad.json: workloads[0].nam", "70-broken.json"]


def test_folder_validation_errors_point_at_the_file_and_its_index(tmp_path: Path) -> None:
    split_sample(tmp_path)
    more = yaml.safe_load((tmp_path / "30-more.yml").read_text())
    more["fleet"]["nodes"][0]["powerDomain"] = "nope"  # merged index 2, first node of its file
    more["workloads"][1]["maxReplicas"] = 0  # merged index 2, second workload of its file
    write(tmp_path / "30-more.yml", more)
    opts = json.loads((tmp_path / "40-options.json").read_text())
    opts["options"]["workers"] = 0
    write(tmp_path / "40-options.json", opts)
    with pytest.raises(InputError) as err:
        load_problem(tmp_path)
    assert [e.path for e in err.value.errors] == [
        "30-more.yml: fleet.nodes[0].powerDomain",
        "30-more.yml: workloads[1].maxReplicas",
        "40-options.json: options.workers",
    ]


def test_conversion_and_validation_errors_are_reported_together(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["fleet"]["nodes"][2]["gpuCount"] = 0
    doc["workloads"][1]["spread"] = {"minDistinct": 1}
    with pytest.raises(InputError) as err:
        load_problem(write(tmp_path / "all.yaml", doc))
    assert error_lines(err) == [
        "all.yaml: workloads[1].spread.level: is required, one of SPREAD_LEVEL_SITE, SPREAD_LEVEL_POWER_DOMAIN, "
        "SPREAD_LEVEL_NODE",
        "all.yaml: fleet.nodes[2].gpuCount: must be between 1 and 1024, got 0",
    ]


# ------------------------------------------------------------------------- plans


def test_plan_written_then_loaded_is_equal(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_json_atomic(path, plan_to_proto(sample_plan()))
    assert plan_from_proto(load_plan(path)) == sample_plan()
    text = path.read_text()
    assert '"placedWork"' in text and '"powerDomain"' in text and '"power_domain":' not in text


def test_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text("old")
    write_json_atomic(path, request_from_problem(sample_problem()))
    assert load_problem(path) == sample_problem()
    assert sorted(os.listdir(tmp_path)) == ["req.json"]


def test_write_gives_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    write_json_atomic(path, plan_to_proto(sample_plan()))
    assert path.stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "plan.json"
    path.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_json_atomic(path, plan_to_proto(sample_plan()))
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["plan.json"]


# ------------------------------------------------------- hostile or degenerate input


@pytest.mark.parametrize(
    "name,text",
    [
        ("literal-nan.json", '"capacityKw": NaN'),
        ("quoted-nan.json", '"capacityKw": "NaN"'),
        ("literal-1e400.json", '"capacityKw": 1e400'),
        ("quoted-infinity.json", '"capacityKw": "Infinity"'),
        ("lower-nan.json", '"capacityKw": "nan"'),
        ("yaml-nan.yaml", "capacityKw: .nan"),
        ("yaml-inf.yaml", "capacityKw: .inf"),
    ],
)
def test_a_non_finite_number_is_one_clear_problem_among_the_others(
    tmp_path: Path, name: str, text: str
) -> None:
    """A literal NaN got the parser's "use quoted NaN" hint, which validation then refused as not
    finite: now one message, in the usual path style, and the file's other problems with it."""
    doc = sample_doc()
    doc["fleet"]["sites"][0]["capacityKw"] = 123.25
    doc["workloads"][0]["priority"] = 0  # another problem, reported in the same run
    if name.endswith(".json"):
        raw = json.dumps(doc, indent=2).replace('"capacityKw": 123.25', text)
    else:
        raw = yaml.safe_dump(doc, sort_keys=False).replace("capacityKw: 123.25", text)
    assert text in raw
    path = tmp_path / name
    path.write_text(raw)
    with pytest.raises(InputError) as err:
        load_problem(path)
    lines = error_lines(err)
    assert len(lines) == 2, lines
    assert re.fullmatch(
        rf"{name}: fleet\.sites\[0\]\.capacityKw: must be a finite number, got (nan|inf)", lines[0]
    )
    assert lines[1].startswith(f"{name}: workloads[0].priority: must be between 1 and 10000")


@pytest.mark.parametrize(
    "name,text,word",
    [
        ("digits.json", '{"fleet": {"nodes": [{"gpuCount": ' + "1" * 5000 + "}]}}", "digits"),
        ("digits.yaml", "fleet:\n  nodes:\n  - gpuCount: " + "1" * 5000 + "\n", "digits"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested"),
        ("deep.yaml", "[" * 100_000 + "]" * 100_000, "nested"),
    ],
)
def test_absurd_documents_are_input_errors_not_crashes(
    tmp_path: Path, name: str, text: str, word: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_request(path)
    [e] = err.value.errors
    assert e.path == name and word in e.message and len(e.message) < 200


def test_long_keys_and_values_are_quoted_cut_short(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["fleet"]["nodes"][0]["k" * 100_000] = 1
    doc["fleet"]["nodes"][1]["gpuCount"] = "x" * 100_000
    with pytest.raises(InputError) as err:
        load_request(write(tmp_path / "f.json", doc))
    assert [e.path[:40] for e in err.value.errors] == [
        "f.json: fleet.nodes[0]." + "k" * 17,
        "f.json: fleet.nodes[1].gpuCount",
    ]
    assert all(len(e.message) < 1000 for e in err.value.errors)
    assert "(100,000 characters)" in err.value.errors[1].message


def test_one_run_reports_type_errors_merge_conflicts_and_references(tmp_path: Path) -> None:
    """A folder split over files reported a type error, then (next run) a merge conflict, then
    an unknown GPU type: every one of them in one run now, each in its file."""
    split_sample(tmp_path)
    more = yaml.safe_load((tmp_path / "30-more.yml").read_text())
    more["fleet"]["nodes"][0]["gpuCount"] = "eight"  # type error
    more["fleet"]["nodes"][0]["gpuType"] = "Z900"  # same node: not reported again (its values are unreliable)
    more["workloads"][1]["allowedGpuTypes"] = ["B300"]  # reference error in another item
    write(tmp_path / "30-more.yml", more)
    write(tmp_path / "50-options.yaml", {"options": {"workers": 8}})  # merge conflict
    sites = json.loads((tmp_path / "20-sites.json").read_text())
    sites["fleet"]["nodes"][1]["site"] = "nowhere"  # reference error in another file
    write(tmp_path / "20-sites.json", sites)
    with pytest.raises(InputError) as err:
        load_problem(tmp_path)
    assert [e.path for e in err.value.errors] == [
        "30-more.yml: fleet.nodes[0].gpuCount",
        "50-options.yaml: options",
        "20-sites.json: fleet.nodes[1].site",
        "30-more.yml: workloads[1].allowedGpuTypes[0]",
    ]
    assert "whole number" in err.value.errors[0].message
    assert "already set in 40-options.json" in err.value.errors[1].message
    assert "unknown GPU type 'B300'" in err.value.errors[3].message


def test_a_number_given_for_a_name_still_resolves_references(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["fleet"]["gpuTypes"][1]["name"] = 4090  # YAML reads an unquoted 4090 as a number
    for n in doc["fleet"]["nodes"]:
        if n["gpuType"] == "L4":
            n["gpuType"] = 4090
    doc["workloads"][1]["allowedGpuTypes"] = [4090]
    with pytest.raises(InputError) as err:
        load_problem(write(tmp_path / "f.yaml", doc))
    assert [e.path for e in err.value.errors] == [
        "f.yaml: fleet.gpuTypes[1].name",
        "f.yaml: fleet.nodes[2].gpuType",
        "f.yaml: workloads[1].allowedGpuTypes[0]",
    ]
    assert all("expected a string" in e.message for e in err.value.errors)


def test_a_file_that_does_not_parse_stops_the_checks_that_need_it(tmp_path: Path) -> None:
    split_sample(tmp_path)
    (tmp_path / "10-types.yaml").write_text("fleet: [\n")  # the GPU types: the nodes cannot be checked
    (tmp_path / "15-more.json").write_text("{")
    more = yaml.safe_load((tmp_path / "30-more.yml").read_text())
    more["fleet"]["nodes"][0]["hostPowerW"] = "lots"
    write(tmp_path / "30-more.yml", more)
    with pytest.raises(InputError) as err:
        load_problem(tmp_path)
    paths = [e.path for e in err.value.errors]
    assert paths == ["10-types.yaml", "15-more.json", "30-more.yml: fleet.nodes[0].hostPowerW", tmp_path.name]
    assert "not checked" in err.value.errors[-1].message  # no "unknown GPU type" for every node


# ------------------------------------------------------------------ JSON printing


def test_plan_json_prints_every_field_and_reads_back(tmp_path: Path) -> None:
    """Replica 0 had no "replica", an unpowered node no "on", moves 0 no "moves": scripts
    reading the file had to know the defaults."""
    plan = sample_plan()
    plan = dataclasses.replace(plan, objective=dataclasses.replace(plan.objective, moves=0))
    path = tmp_path / "plan.json"
    write_json_atomic(path, plan_to_proto(plan))
    doc = json.loads(path.read_text())
    assert doc["placements"][0]["replica"] == 0
    assert doc["objective"]["moves"] == "0"  # int64: a JSON string (proto3 JSON mapping)
    assert [n["on"] for n in doc["budgets"]["nodes"]] == [n.on for n in plan.budgets.nodes]
    assert False in [n["on"] for n in doc["budgets"]["nodes"]]
    assert all("usedMilli" in g and "powerCapW" in g for g in doc["budgets"]["gpus"])
    assert plan_from_proto(load_plan(path)) == plan
    assert to_json(plan_to_proto(plan)) == path.read_text()


def test_requests_keep_the_compact_form_a_person_writes(tmp_path: Path) -> None:
    text = to_json(request_from_problem(sample_problem()))
    assert '"cpuMilli": 0' not in text and '"pinned": false' not in text
    path = tmp_path / "req.json"
    path.write_text(text)
    assert load_problem(path) == sample_problem()
