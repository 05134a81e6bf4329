"""The one loader for schema-checked YAML/JSON files: strict keys, one error format, short messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adapter.errors import ConfigError, InputError
from adapter.fhir.constants import PROJECT_BASE
from adapter.paths import mappings_dir
from adapter.settings import load_settings
from adapter.sources.ctgov import parse_studies
from adapter.sources.ctgov_tables import load_tables
from adapter.sources.loader import json_path, load_checked, load_yaml, schema_problem, with_project_base

SCHEMA = {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "string"}}},
          "additionalProperties": False}  # fmt: skip


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("rows: [a]\nrows: [b]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid YAML: duplicate key 'rows'")):
        load_yaml(path)


def test_schema_problem_names_file_and_json_path(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("rows: [a, 2]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_checked(path, SCHEMA)
    assert str(caught.value) == f"{path}: rows[1]: 2 is not of type 'string'"


def test_schema_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (tmp_path / "t.yaml").write_text("rows: [a]\n", encoding="utf-8")
    assert load_checked(tmp_path / "t.yaml", tmp_path / "s.json") == {"rows": ["a"]}


def test_a_huge_value_is_not_repeated_in_the_message() -> None:
    problem = schema_problem({"rows": "x" * 10_000}, SCHEMA)
    assert problem is not None and problem[0] == ("rows",) and len(problem[1]) <= 200


def test_json_path() -> None:
    assert json_path(["protocolSection", "phases", 1]) == "protocolSection.phases[1]"
    assert json_path([]) == "(document)"


def test_code_table_with_duplicate_key_is_an_error(tmp_path: Path) -> None:
    for source in mappings_dir().glob("ctgov-*"):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    status = tmp_path / "ctgov-status.yaml"
    status.write_text(status.read_text(encoding="utf-8") + "enum: Status\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'enum'"):
        load_tables(tmp_path)


def test_config_file_with_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("servers: {}\nservers: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'servers'"):
        load_settings(path, env={})


def test_study_json_with_duplicate_key_is_an_input_error() -> None:
    with pytest.raises(InputError, match="duplicate key 'protocolSection'"):
        parse_studies(b'{"protocolSection": {}, "protocolSection": {}}', "in.json")


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]\n" for before, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    # Nine levels of nine aliases: 9**9 strings once expanded, from a 500-byte file.
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) are not accepted.*\(line 2, column \d+\)"):
        load_checked(path, SCHEMA)


def test_deep_yaml_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 50_000 + "]" * 50_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        load_yaml(path)


def test_a_yaml_syntax_error_names_line_and_column_not_the_text(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("rows: [a\nsecret-value: x: y\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert "(line 2, column" in str(caught.value) and "secret-value" not in str(caught.value)


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        ({"rows": {"nested": ["x" * 1000] * 1000}}, SCHEMA),
        ({"rows": ["x" * 1000] * 1000}, {"type": "object", "properties": {"rows": {"maxItems": 2}}}),
        ({"rows": ["x" * 1000] * 1000}, {"type": "object", "properties": {"rows": {"not": {"type": "array"}}}}),
    ],
    ids=["type", "maxItems", "not"],
)
def test_a_container_is_named_by_its_kind_never_printed(document: object, schema: dict[str, object]) -> None:
    problem = schema_problem(document, schema)
    assert problem is not None and problem[0] == ("rows",)
    assert "xxx" not in problem[1] and problem[1].startswith(("an object", "an array")), problem[1]


def test_a_pattern_dollar_ends_the_string_as_in_json_schema() -> None:
    schema = {"type": "string", "pattern": "^NCT[0-9]{8}$"}
    assert schema_problem("NCT04753476", schema) is None
    assert schema_problem("NCT04753476\n", schema) is not None  # Python's $ alone lets the newline through


def test_a_leading_project_base_placeholder_becomes_the_base(tmp_path: Path) -> None:
    path = tmp_path / "table.yaml"
    path.write_text('system: "{project_base}CodeSystem/x"\n'
                    'codes: [{system: "{project_base}sid/y"}, "see {project_base}", "{project_base}"]\n'
                    '"{project_base}key": 1\n', encoding="utf-8")
    assert load_yaml(path) == {
        "system": PROJECT_BASE + "CodeSystem/x",
        "codes": [{"system": PROJECT_BASE + "sid/y"}, "see {project_base}", PROJECT_BASE],
        "{project_base}key": 1,  # keys are names, never URLs
    }


def test_the_base_is_put_in_before_the_schema_check(tmp_path: Path) -> None:
    path = tmp_path / "table.yaml"
    path.write_text('system: "{project_base}CodeSystem/x"\n', encoding="utf-8")
    schema = {"type": "object", "properties": {"system": {"type": "string", "pattern": "^https?://"}}}
    assert load_checked(path, schema) == {"system": PROJECT_BASE + "CodeSystem/x"}
    assert with_project_base([1, None, {"a": ["{project_base}"]}]) == [1, None, {"a": [PROJECT_BASE]}]
