"""Suites that are not tables: property-based crash schedules, adversarial input, load.

Every ``test_*.py`` module here is collected by ``pytest conformance`` after the contract
cells.  Use the plugin's fixtures: ``conformance_target`` (the TargetConfig under test),
``conformance_settings`` (``.explore`` is the ``--conformance-explore`` budget) and
``spawn_target(server={...})`` (a started harness Target, closed at teardown).
"""
