"""Named extension points: one small mechanism, the same shape for every kind of plug-in.

Each kind has one :class:`Registry`, kept next to the code that uses it:

==================  ===========================================  ==============================
kind                registry                                     first entries
==================  ===========================================  ==============================
action heads        ``mobile_vla.model.heads.ACTION_HEADS``      ``lstm``, ``classification``
simulator tasks     ``mobile_vla.sim.tasks.TASKS``               ``cup``
scene presets       ``mobile_vla.sim.tasks.SCENE_PRESETS``       ``classic``
episode formats     ``mobile_vla.data.formats.EPISODE_FORMATS``  ``hdf5``
policy backends     ``mobile_vla.policy.backends.POLICY_BACKENDS``  ``torch``
==================  ===========================================  ==============================

Adding one is a new module plus one registration line (``@ACTION_HEADS.register("name")``).
Code outside this package is found through the entry-point group ``mobile_vla.plugins``: each
entry point names a module (importing it registers its plug-ins) or a callable taking no
arguments; all of them load once, the first time any registry is asked for a name.
See ``docs/extending.md``.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mobile_vla.errors import MobileVLAError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mobile_vla.plugins"
T = TypeVar("T")

_plugins_loaded = False


def load_plugins() -> list[str]:
    """Import every ``mobile_vla.plugins`` entry point once; returns their names."""
    global _plugins_loaded
    if _plugins_loaded:
        return []
    _plugins_loaded = True  # first, so that a plug-in may look up registries while it loads
    names = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loaded = ep.load()
            if callable(loaded):  # a module registers on import; a function when called
                loaded()
        except Exception as exc:  # a broken plug-in must say which one it is
            raise MobileVLAError(f"plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        names.append(ep.name)
        log.debug("loaded plug-in %s from %s", ep.name, ep.value)
    return names


class Registry(Generic[T]):
    """A name → object map for one kind of plug-in (``kind`` names it in errors)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """``REGISTRY.register("name", obj)``, or as a decorator ``@REGISTRY.register("name")``."""
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind}: a plug-in name must be a non-empty string, got {name!r}")

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise MobileVLAError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The object registered as ``name``; the error lists the registered names."""
        if name not in self._items:
            load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise MobileVLAError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        load_plugins()
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items
