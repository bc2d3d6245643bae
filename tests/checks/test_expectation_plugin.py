"""A third-party plugin adds an expectation key through the pluggy hook: the parser accepts and
validates it (file:line), the executor learns its probes, run_checks judges it."""

from __future__ import annotations

import textwrap

import pytest

from conformance.checks import run_checks
from conformance.contract import parse_contract, schema
from conformance.errors import ContractError
from conformance.expectations import probes, registry
from conformance.expectations.hooks import PluginError, hookimpl, register_plugin, unregister_plugin
from conformance.history import Unknown
from conformance.plugin import cell_verdict

from . import expectation_plugin
from .builders import make_history, normal_run

TABLE = textwrap.dedent("""\
    contract: responses/plugged
    profile: responses
    defaults:
      request: {store: true, background: true, stream: true}
      script: {deltas: 6, delay_ms: 0}
    paths:
      A: {fault: none}
    rows:
      - id: D
        title: six deltas on the live stream
        cells:
          A: {delta_count: COUNT}
    """)


@pytest.fixture
def plugged():
    register_plugin(expectation_plugin, name="delta-count-plugin")
    yield
    unregister_plugin(expectation_plugin, keys=(expectation_plugin.KEY,))


def table(count: str = "6", **replace: str) -> str:
    text = TABLE.replace("COUNT", count)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def test_without_the_plugin_the_key_is_unknown():
    with pytest.raises(ContractError) as info:
        parse_contract(table(), "plugged.yaml")
    assert "plugged.yaml:12: rows[0].cells.A.delta_count: unknown expectation 'delta_count'" in str(info.value.errors[0])


def test_a_plugin_key_is_parsed_probed_and_judged(plugged):
    [cell] = parse_contract(table(), "plugged.yaml").cells
    assert cell.expect == {"delta_count": 6}
    assert "delta_count" in schema()["$defs"]["cell"]["properties"]
    assert probes(cell).replays == ("start",)
    good = make_history(normal_run(deltas=6))
    assert run_checks(good, cell) == [] and cell_verdict(run_checks(good, cell), cell.level) == "pass"
    broken = make_history(normal_run(deltas=5))
    [v] = run_checks(broken, cell)
    assert str(v) == "delta_count: expected 6 text deltas on the live stream, observed 5"
    assert cell_verdict([v], cell.level) == "fail"
    blind = make_history(normal_run(deltas=6))
    blind.calls = [c for c in blind.calls if c.name != "create"]
    findings = [f for f in run_checks(blind, cell) if f.check == "delta_count"]
    assert findings and isinstance(findings[0], Unknown)
    assert cell_verdict(findings, cell.level) == "not_testable"


def test_a_plugin_key_has_file_line_schema_and_runnability_errors(plugged):
    with pytest.raises(ContractError) as info:
        parse_contract(table("-1"), "plugged.yaml")
    assert [str(e) for e in info.value.errors] == [
        "plugged.yaml:12: rows[0].cells.A.delta_count: -1 is below the minimum 0"]
    with pytest.raises(ContractError) as info:
        parse_contract(table(**{"stream: true": "stream: false"}), "plugged.yaml")
    assert [str(e) for e in info.value.errors] == [
        "plugged.yaml:12: rows[0].cells.A.delta_count: delta_count counts the live stream's deltas: needs stream=true"]


def test_a_plugin_key_applies_only_to_its_profiles(plugged):
    text = table().replace("responses/plugged", "invocations/plugged").replace("profile: responses", "profile: invocations")
    text = text.replace("  request: {store: true, background: true, stream: true}\n", "")
    with pytest.raises(ContractError) as info:
        parse_contract(text, "plugged.yaml")
    assert any("expectation 'delta_count' does not apply to profile invocations" in str(e) for e in info.value.errors)


def test_a_broken_plugin_is_one_error_naming_it():
    class Broken:
        @hookimpl
        def conformance_expectations(self, registry):
            registry.register(registry.get("status"))  # a second home for a bundled key

    broken = Broken()
    registry()
    with pytest.raises(PluginError, match="expectation plugin broken: ValueError: expectation key 'status' is already registered"):
        register_plugin(broken, name="broken")
    unregister_plugin(broken)
    assert registry().get("status") is not None
