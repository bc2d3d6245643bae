"""YAML with line numbers, shared by contract files and target files.

``parse`` loads one YAML document into ``LineDict`` / ``LineList`` (plain ``dict`` / ``list``
subclasses that remember the 1-based line of each key and item), reports duplicate keys and
non-text keys instead of silently keeping the last one, and turns a syntax error into one
``YamlSyntaxError`` carrying the line.  ``line_of`` finds the line of a key path, and
``schema_problems`` words JSON-schema errors for a person, each with its path, so that every
file of the kit reports a mistake as ``file:line: key: message`` in the same words.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import jsonschema
import yaml


class LineDict(dict):
    """A mapping from YAML that remembers its own line and the line of each key."""

    line: int = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}


class LineList(list):
    """A sequence from YAML that remembers its own line and the line of each item."""

    line: int = 1

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []


class LineLoader(yaml.SafeLoader):
    """SafeLoader that builds LineDict/LineList (1-based lines) and reports duplicate keys."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.problems: list[tuple[int, str]] = []


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            loader.problems.append((line, f"key {key!r} is not text (quote it)"))
            key = str(key)
        if key in result:
            loader.problems.append((line, f"duplicate key '{key}' (first at line {result.key_lines[key]})"))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList()
    result.line = node.start_mark.line + 1
    for child in node.value:
        result.append(loader.construct_object(child, deep=True))
        result.item_lines.append(child.start_mark.line + 1)
    return result


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class YamlSyntaxError(Exception):
    """The text is not YAML: ``message`` says why, ``line`` where (None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def parse(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """One YAML document with line bookkeeping, and its ``(line, message)`` problems (duplicate
    or non-text keys).  Raises ``YamlSyntaxError`` when the text is not YAML."""
    loader = LineLoader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        context = ""
        if exc.context:
            started = exc.context_mark.line + 1 if exc.context_mark is not None else None
            context = f" ({exc.context}" + (f" started at line {started}" if started not in (None, line) else "") + ")"
        raise YamlSyntaxError(f"YAML syntax error: {problem}{context}", line) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML error: {exc}", None) from None
    finally:
        loader.dispose()
    return doc, loader.problems


def plain(value: Any) -> Any:
    """Deep copy into plain dicts and lists (no line bookkeeping)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def key_text(path: Iterable[Any]) -> str:
    """``rows[0].cells.D`` for the path ``("rows", 0, "cells", "D")``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + str(step)
    return out


def line_of(doc: Any, path: Iterable[Any]) -> int:
    """Line of the last key/item of ``path`` that exists in ``doc`` (1 for a plain value)."""
    line = getattr(doc, "line", 1)
    node = doc
    for step in path:
        if isinstance(node, LineDict) and not isinstance(step, int) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
    return line


def strings(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """Every text value under ``doc`` (mapping values and list items, not keys) with its path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from strings(value, path + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from strings(value, path + (index,))
    elif isinstance(doc, str):
        yield path, doc


def replace(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set the value at ``path`` (which exists) in place, keeping the line bookkeeping."""
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


# -- JSON-schema errors in a person's words ---------------------------------------------------
_YAML_TYPES = {
    dict: "a mapping", LineDict: "a mapping", list: "a list", LineList: "a list", str: "text",
    bool: "a boolean", int: "an integer", float: "a number", type(None): "null",
}
_SCHEMA_TYPES = {
    "object": "a mapping", "array": "a list", "string": "text", "boolean": "a boolean",
    "integer": "an integer", "number": "a number", "null": "null",
}


def show(value: Any) -> str:
    """A value as a YAML author wrote it, at most about 60 characters."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = json.dumps(plain(value), default=str)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class SchemaProblem:
    """One schema error: where (a key path into the document) and what, in a person's words."""

    path: tuple[Any, ...]
    message: str


def schema_problems(validator: jsonschema.protocols.Validator, doc: Any) -> list[SchemaProblem]:
    """The schema errors of ``doc``, one per unknown key, missing key or wrong value.

    An unknown key names its own path (so its line is the key's line) and the closest known key
    (``did you mean``), and so does a value outside an ``enum``.  A schema can word them itself:
    ``x-unknown`` (a template with ``{key}``, ``{hint}``, ``{known}``) and ``x-known`` (the keys
    to list) for unknown keys, ``x-invalid`` (``{value}``, ``{hint}``, ``{known}``) for enums."""
    out: list[SchemaProblem] = []
    for err in validator.iter_errors(doc):
        path = tuple(err.absolute_path)
        kind, sub, value = err.validator, err.schema, err.instance
        if kind == "additionalProperties" and isinstance(value, dict):
            props = sub.get("properties", {})
            patterns = list(sub.get("patternProperties", {}))
            known = sub.get("x-known") or list(props)
            template = sub.get("x-unknown", "unknown key '{key}' ({hint}known: {known})")
            for extra in value:
                if extra in props or any(re.search(p, extra) for p in patterns):
                    continue
                close = difflib.get_close_matches(str(extra), [str(k) for k in known], n=1)
                hint = f"did you mean {close[0]}? " if close else ""
                out.append(SchemaProblem(path + (extra,), template.format(key=extra, known=", ".join(known), hint=hint)))
        elif kind == "required" and isinstance(value, dict):
            for name in err.validator_value:
                if name not in value:
                    out.append(SchemaProblem(path, f"missing required key '{name}'"))
        elif kind == "enum":
            options = ", ".join(show(v) if not isinstance(v, str) else v for v in err.validator_value)
            texts = [v for v in err.validator_value if isinstance(v, str)]
            close = difflib.get_close_matches(value, texts, n=1) if isinstance(value, str) else []
            hint = f"did you mean {close[0]}? " if close else ""
            template = sub.get("x-invalid", "invalid value {value} ({hint}expected one of: {known})")
            out.append(SchemaProblem(path, template.format(value=show(value), hint=hint, known=options)))
        elif kind == "type":
            wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
            names = " or ".join(_SCHEMA_TYPES.get(w, w) for w in wanted)
            got = _YAML_TYPES.get(type(value), type(value).__name__)
            out.append(SchemaProblem(path, f"expected {names}, got {got} {show(value)}"))
        elif kind == "minimum":
            out.append(SchemaProblem(path, f"{show(value)} is below the minimum {err.validator_value}"))
        elif kind == "exclusiveMinimum":
            out.append(SchemaProblem(path, f"{show(value)} must be greater than {err.validator_value}"))
        elif kind == "maximum":
            out.append(SchemaProblem(path, f"{show(value)} is above the maximum {err.validator_value}"))
        elif kind in ("minItems", "minProperties", "minLength"):
            out.append(SchemaProblem(path, "must not be empty"))
        elif kind == "uniqueItems":
            out.append(SchemaProblem(path, f"has duplicate items: {show(value)}"))
        elif kind == "pattern":
            out.append(SchemaProblem(path, f"{show(value)} does not match the pattern {err.validator_value}"))
        else:
            out.append(SchemaProblem(path, err.message))
    return out
