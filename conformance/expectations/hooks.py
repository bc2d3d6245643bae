"""The plugin hook that lets a third party add expectation keys (pluggy, as pytest uses).

A plugin is any object or module with a ``conformance_expectations`` hook implementation::

    from conformance.expectations import Expectation
    from conformance.expectations.hooks import hookimpl

    @hookimpl
    def conformance_expectations(registry):
        registry.register(Expectation(name="my_key", profiles=frozenset({"responses"}),
                                      schema={"const": True}, check=check_my_key))

Plugins come from the ``stream_task_conformance`` setuptools entry point group (loaded once,
when the registry is first built) or from ``register_plugin(obj)`` at any time (a conftest.py
may call it).  A hook that raises, or registers a name twice, is a ``PluginError`` naming the
plugin: a broken plugin is one clear error, never a traceback from deep in the parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from conformance.errors import KitError

if TYPE_CHECKING:
    from . import Registry

PROJECT = "stream_task_conformance"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class PluginError(KitError):
    """A plugin's hook failed (raised, or registered a key twice): one error line, as a bad
    option or contract is."""


class Spec:
    @hookspec
    def conformance_expectations(self, registry: "Registry") -> None:
        """Register expectation keys on ``registry`` (``registry.register(Expectation(...))``)."""


_PM: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    global _PM
    if _PM is None:
        _PM = pluggy.PluginManager(PROJECT)
        _PM.add_hookspecs(Spec)
    return _PM


def _call(plugin: Any, registry: "Registry") -> None:
    pm = plugin_manager()
    name = pm.get_name(plugin) or repr(plugin)
    caller = pm.subset_hook_caller("conformance_expectations", remove_plugins=[
        p for p in pm.get_plugins() if p is not plugin])
    try:
        caller(registry=registry)
    except Exception as exc:  # a broken plugin is one error naming it
        raise PluginError(f"expectation plugin {name}: {type(exc).__name__}: {exc}") from None


def load_plugins(registry: "Registry") -> None:
    """Load the entry-point plugins and let every plugin registered so far add its keys."""
    pm = plugin_manager()
    try:
        pm.load_setuptools_entrypoints(PROJECT)
    except Exception as exc:
        raise PluginError(f"cannot load the {PROJECT} entry-point plugins: {type(exc).__name__}: {exc}") from None
    for plugin in pm.get_plugins():
        _call(plugin, registry)


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin; its keys join the registry at once (or when it is first built)."""
    from . import _REGISTRY

    plugin_manager().register(plugin, name=name)
    if _REGISTRY is not None:
        _call(plugin, _REGISTRY)


def unregister_plugin(plugin: Any, keys: tuple[str, ...] = ()) -> None:
    """Remove a plugin and the keys it added (tests use this to leave the registry as found)."""
    from . import _REGISTRY

    plugin_manager().unregister(plugin)
    if _REGISTRY is not None:
        for key in keys:
            _REGISTRY.unregister(key)
