"""HTTP-level expectations: ``http`` (status codes), ``content_type``, ``error`` (error bodies)."""

from __future__ import annotations

from typing import Any

from conformance.history import HttpCall, History, Violation
from conformance.model import Cell

from ._util import as_int, call_body, call_summary, excerpt

ERROR_FIELDS = ("type", "code", "param", "message_contains")


def _expected_codes(spec: Any) -> list[int] | None:
    """``200`` or ``[200, 202]`` (ints or decimal strings) as a list of ints; None if malformed."""
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    codes = [as_int(item) for item in items]
    if not codes or any(code is None for code in codes):
        return None
    return [c for c in codes if c is not None]


def _not_a_mapping(check: str, expected: Any) -> list[Violation]:
    return [
        Violation(
            check,
            f"expected a mapping of call name to expectation, observed {type(expected).__name__} "
            f"{excerpt(expected, 100)}",
        )
    ]


def _no_call(check: str, name: str, history: History) -> Violation:
    made = sorted({c.name for c in history.calls})
    return Violation(
        check,
        f"expected a `{name}` call; none was made",
        evidence=f"calls made: {', '.join(made) if made else 'none'}",
    )


def check_http(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Every call with each named name answered with that code (or one of those codes)."""
    if not isinstance(expected, dict):
        return _not_a_mapping("http", expected)
    violations: list[Violation] = []
    for name, spec in expected.items():
        codes = _expected_codes(spec)
        if codes is None:
            violations.append(
                Violation("http", f"expected code(s) for `{name}` must be ints, got {spec!r}")
            )
            continue
        calls = history.calls_named(name)
        if not calls:
            violations.append(_no_call("http", name, history))
            continue
        wanted = codes[0] if len(codes) == 1 else f"one of {codes}"
        for index, call in enumerate(calls):
            if call.status is None:
                violations.append(
                    Violation(
                        "http",
                        f"expected `{name}` #{index + 1} to answer {wanted}, observed a transport "
                        f"error: {call.error or call.ended}",
                        evidence=call_summary(call),
                    )
                )
            elif call.status not in codes:
                violations.append(
                    Violation(
                        "http",
                        f"expected `{name}` #{index + 1} to answer {wanted}, observed {call.status}",
                        evidence=call_summary(call),
                    )
                )
    return violations


def check_content_type(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """Every call with each named name has a content type starting with the prefix
    (compared case-insensitively, as media types are)."""
    if not isinstance(expected, dict):
        return _not_a_mapping("content_type", expected)
    violations: list[Violation] = []
    for name, prefix in expected.items():
        if not isinstance(prefix, str) or not prefix:
            violations.append(
                Violation("content_type", f"expected prefix for `{name}` must be a string, got {prefix!r}")
            )
            continue
        calls = history.calls_named(name)
        if not calls:
            violations.append(_no_call("content_type", name, history))
            continue
        for index, call in enumerate(calls):
            observed = call.content_type
            if call.status is None:
                violations.append(
                    Violation(
                        "content_type",
                        f"expected `{name}` #{index + 1} content type {prefix!r}..., observed a "
                        f"transport error: {call.error or call.ended}",
                        evidence=call_summary(call),
                    )
                )
            elif observed is None or not observed.lower().startswith(prefix.lower()):
                violations.append(
                    Violation(
                        "content_type",
                        f"expected `{name}` #{index + 1} content type {prefix!r}..., observed "
                        f"{observed!r}",
                        evidence=call_summary(call),
                    )
                )
    return violations


def _compare_error(
    where: str, error: Any, spec: dict[str, Any], evidence: str
) -> list[Violation]:
    violations: list[Violation] = []
    for field, want in spec.items():
        if not isinstance(error, dict):
            if want is None:
                continue  # null/absent expected, and there is no error object at all
            violations.append(
                Violation(
                    "error",
                    f"expected {where} error.{field} {want!r}, observed no error object",
                    evidence=evidence,
                )
            )
            continue
        if field == "message_contains":
            message = error.get("message")
            if want is None:
                if message is not None:
                    violations.append(
                        Violation(
                            "error",
                            f"expected {where} error.message to be null/absent, observed {message!r}",
                            evidence=evidence,
                        )
                    )
            elif not isinstance(message, str) or str(want).lower() not in message.lower():
                violations.append(
                    Violation(
                        "error",
                        f"expected {where} error.message to contain {want!r}, observed {message!r}",
                        evidence=evidence,
                    )
                )
            continue
        observed = error.get(field)
        allowed = list(want) if isinstance(want, (list, tuple)) else [want]
        if observed not in allowed:  # a list: any of its values (readings the documents allow, §6)
            what = "null/absent" if want is None else " or ".join(repr(w) for w in allowed)
            violations.append(
                Violation(
                    "error",
                    f"expected {where} error.{field} {what}, observed {observed!r}",
                    evidence=evidence,
                )
            )
    return violations


def check_error(history: History, expected: Any, cell: Cell) -> list[Violation]:
    """For a call name: the LAST call of that name has a JSON body ``{"error": {...}}`` whose
    fields equal the expected ones (a list: any of its values; ``message_contains``:
    case-insensitive substring; a field given as null must be null or absent).  ``response``: the same on ``history.final["error"]``."""
    if not isinstance(expected, dict):
        return _not_a_mapping("error", expected)
    violations: list[Violation] = []
    for name, spec in expected.items():
        if not isinstance(spec, dict):
            violations.append(
                Violation("error", f"expected error fields for `{name}` must be a mapping, got {spec!r}")
            )
            continue
        unknown = [field for field in spec if field not in ERROR_FIELDS]
        if unknown:
            violations.append(
                Violation(
                    "error",
                    f"unknown error field(s) {unknown} for `{name}` (known: {', '.join(ERROR_FIELDS)})",
                )
            )
            continue
        if name == "response":
            if history.final is None:
                violations.append(
                    Violation(
                        "error",
                        f"expected the final response's error {excerpt(spec, 150)}, observed no "
                        "final response object",
                    )
                )
                continue
            error = history.final.get("error")
            evidence = f"final ({history.final_source}) status={history.final.get('status')!r} error={excerpt(error, 200)}"
            violations += _compare_error("final response", error, spec, evidence)
            continue
        calls = history.calls_named(name)
        if not calls:
            violations.append(_no_call("error", name, history))
            continue
        call: HttpCall = calls[-1]
        evidence = call_summary(call)
        if call.status is None:
            violations.append(
                Violation(
                    "error",
                    f"expected `{name}` to answer an error body {excerpt(spec, 150)}, observed a "
                    f"transport error: {call.error or call.ended}",
                    evidence=evidence,
                )
            )
            continue
        body = call_body(call)
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) and any(v is not None for v in spec.values()):
            violations.append(
                Violation(
                    "error",
                    f"expected `{name}` body {{\"error\": {excerpt(spec, 150)}}}, observed "
                    f"{excerpt(body if body is not None else call.body_text, 200)}",
                    evidence=evidence,
                )
            )
            continue
        violations += _compare_error(f"`{name}`", error, spec, evidence)
    return violations
