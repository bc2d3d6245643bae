"""The ``conformance`` console command."""


def main(argv=None) -> int:  # pragma: no cover - replaced by the lint work
    raise SystemExit("conformance: not implemented yet")
