"""pytest plugin: options, generated cell items, session reports (filled in by the executor work)."""
