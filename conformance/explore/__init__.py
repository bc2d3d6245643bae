"""Search for unknown bugs: stateful crash schedules, adversarial input, load during faults.

- ``invariants``: pure functions over recorded observations (``Observations``) that return
  problem strings; no I/O, unit-tested with broken observations.
- ``machine``: the responses-profile hypothesis state machine (rules = operations on a live
  target) and ``explore()``, which runs it with a budget and a reproducible seed.
- ``adversarial``: hypothesis strategies for bad requests, one class per test id, and the
  expectation every answer must meet.
- ``load``: N concurrent streams with readers attached while the target is SIGKILLed.
"""
