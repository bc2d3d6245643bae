"""Store providers by name: bundled ones, then third-party ones by entry point.

``open_store("sqlite:path=/tmp/x.db", state_dir)`` parses the spec ``NAME[:key=value,...]``,
finds the provider class and builds it as ``cls(state_dir, **options)``. Bundled providers are
imported only when named (``postgres`` needs psycopg, the others only the standard library).
Third-party providers register a :class:`StoreProvider` subclass under the entry-point group
``conformance.store_providers``. Every mistake (unknown name, a provider that fails to import,
an unknown or malformed option) is one :class:`StoreConfigError` line.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata

from .base import (
    DURABLE_STORE,
    KIND_RESPONSE,
    KIND_TASK,
    EventLog,
    RecordStore,
    StoreCapabilities,
    StoreConfigError,
    StoreCorruptError,
    StoreError,
    StoreProvider,
    StoreTransientError,
)

ENTRY_POINT_GROUP = "conformance.store_providers"

PROVIDERS: dict[str, str] = {
    "file": "reference_impl.stores.file:FileStoreProvider",
    "sqlite": "reference_impl.stores.sqlite:SqliteStoreProvider",
    "memory": "reference_impl.stores.memory:MemoryStoreProvider",
    "postgres": "reference_impl.stores.postgres:PostgresStoreProvider",
}
"""Bundled providers: name -> ``module:Class`` (imported on first use)."""


@dataclass(frozen=True)
class StoreSpec:
    """A parsed ``NAME[:key=value,...]``."""

    name: str
    options: dict[str, str] = field(default_factory=dict)


def parse_store_spec(text: str) -> StoreSpec:
    """Parse ``NAME[:key=value,key=value]`` (a value may contain ``:`` and ``=``, not ``,``)."""
    if not isinstance(text, str) or not text.strip():
        raise StoreConfigError("store: expected NAME[:key=value,...], got an empty string")
    name, _, rest = text.partition(":")
    if not name or any(c.isspace() for c in name):
        raise StoreConfigError(f"store: expected NAME[:key=value,...], got {text!r}")
    options: dict[str, str] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise StoreConfigError(f"store {name}: option {item!r} is not key=value")
            if key in options:
                raise StoreConfigError(f"store {name}: option {key!r} given twice")
            options[key] = value
    return StoreSpec(name, options)


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    """Every provider name that can be selected (bundled and installed by entry point)."""
    return sorted(set(PROVIDERS) | set(_entry_points()))


def provider_class(name: str) -> type[StoreProvider]:
    """The provider class registered under ``name`` (bundled first, then entry points)."""
    try:
        if name in PROVIDERS:
            module, _, attr = PROVIDERS[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
        else:
            eps = _entry_points()
            if name not in eps:
                raise StoreConfigError(
                    f"unknown store provider {name!r} (known: {', '.join(provider_names())}; "
                    f"third-party providers register under the entry-point group {ENTRY_POINT_GROUP!r})"
                )
            cls = eps[name].load()
    except StoreConfigError:
        raise
    except Exception as exc:  # an ImportError, or anything a broken plugin raises on import
        raise StoreConfigError(f"store provider {name!r} failed to import: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, StoreProvider)):
        raise StoreConfigError(f"store provider {name!r} is not a StoreProvider subclass: {cls!r}")
    return cls


def check_spec(text: str) -> tuple[StoreSpec, type[StoreProvider]]:
    """Parse a spec, load its provider class and check the option names (no I/O on the store)."""
    spec = parse_store_spec(text)
    cls = provider_class(spec.name)
    allowed = tuple(getattr(cls, "options", ()))
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise StoreConfigError(f"store {spec.name}: unknown option(s) {', '.join(unknown)} (known: {known})")
    return spec, cls


def open_store(spec: str, state_dir: str | os.PathLike[str]) -> StoreProvider:
    """Build the provider named by ``spec`` (``NAME[:key=value,...]``) rooted at ``state_dir``."""
    parsed, cls = check_spec(spec)
    try:
        return cls(state_dir, **parsed.options)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreConfigError(f"store {parsed.name}: cannot open: {type(exc).__name__}: {exc}") from exc


__all__ = [
    "DURABLE_STORE",
    "ENTRY_POINT_GROUP",
    "KIND_RESPONSE",
    "KIND_TASK",
    "PROVIDERS",
    "EventLog",
    "RecordStore",
    "StoreCapabilities",
    "StoreConfigError",
    "StoreCorruptError",
    "StoreError",
    "StoreProvider",
    "StoreSpec",
    "StoreTransientError",
    "check_spec",
    "open_store",
    "parse_store_spec",
    "provider_class",
    "provider_names",
]
