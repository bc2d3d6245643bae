"""conformance/yamlfile.py: YAML with line numbers and schema errors in a person's words, the one
loader and formatter of contract files and target files."""

from __future__ import annotations

import jsonschema
import pytest

from conformance import yamlfile

TEXT = """\
name: x
rows:
  - id: A
    cells: {a: 1}

  - id: B
"""


def test_lines_of_keys_and_items():
    doc, problems = yamlfile.parse(TEXT)
    assert problems == []
    assert yamlfile.line_of(doc, ["name"]) == 1
    assert yamlfile.line_of(doc, ["rows", 1]) == 6
    assert yamlfile.line_of(doc, ["rows", 0, "cells", "a"]) == 4
    assert yamlfile.line_of(doc, ["rows", 1, "missing"]) == 6  # the deepest existing step
    assert yamlfile.line_of(doc, ["rows", 7]) == 2
    assert yamlfile.line_of("plain", ["x"]) == 1
    assert yamlfile.key_text(("rows", 0, "cells", "a")) == "rows[0].cells.a"
    assert yamlfile.plain(doc) == {"name": "x", "rows": [{"id": "A", "cells": {"a": 1}}, {"id": "B"}]}
    assert type(yamlfile.plain(doc)) is dict


def test_duplicate_and_non_text_keys_are_problems_with_lines():
    _, problems = yamlfile.parse("a: 1\n2: b\na: 3\n")
    assert problems == [(2, "key 2 is not text (quote it)"), (3, "duplicate key 'a' (first at line 1)")]


def test_a_syntax_error_carries_its_line():
    with pytest.raises(yamlfile.YamlSyntaxError) as e:
        yamlfile.parse("a: [1, 2\nb: 3\n")
    assert e.value.line == 2
    assert e.value.message.startswith("YAML syntax error: expected ',' or ']'")


def test_strings_and_replace_keep_the_bookkeeping():
    doc, _ = yamlfile.parse("a: x\nb: [y, 2, {c: z}]\n")
    found = list(yamlfile.strings(doc))
    assert found == [(("a",), "x"), (("b", 0), "y"), (("b", 2, "c"), "z")]
    yamlfile.replace(doc, ("b", 2, "c"), "Z")
    assert doc["b"][2]["c"] == "Z" and yamlfile.line_of(doc, ["b", 2, "c"]) == 2


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "command": {"type": "string"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "claims": {"type": "array", "items": {"enum": ["cancel", "checkpoints"], "x-invalid": "unknown claim {value} ({hint}known: {known})"}},
        "level": {"enum": ["MUST", "SHOULD"]},
    },
}


def problems_of(text: str) -> list[tuple[int, str, str]]:
    doc, _ = yamlfile.parse(text)
    found = yamlfile.schema_problems(jsonschema.Draft202012Validator(SCHEMA), doc)
    return [(yamlfile.line_of(doc, p.path), yamlfile.key_text(p.path), p.message) for p in found]


def test_schema_errors_name_the_key_its_line_and_the_closest_known_name():
    assert problems_of("command: x\ntimeout: 3\n") == [
        (2, "timeout", "unknown key 'timeout' (did you mean timeout_s? known: command, timeout_s, claims, level)")]
    assert problems_of("command: x\nclaims:\n  - cancel\n  - checkpoint\n") == [
        (4, "claims[1]", "unknown claim 'checkpoint' (did you mean checkpoints? known: cancel, checkpoints)")]
    assert problems_of("command: x\nlevel: MAY\n") == [(2, "level", "invalid value 'MAY' (expected one of: MUST, SHOULD)")]
    assert problems_of("command: 3\ntimeout_s: 0\n") == [
        (1, "command", "expected text, got an integer 3"), (2, "timeout_s", "0 must be greater than 0")]
    assert problems_of("timeout_s: 1\n") == [(1, "", "missing required key 'command'")]
    assert problems_of("command: ok\n") == []
