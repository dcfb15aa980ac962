"""Data sources: several episode directories, each with a name and a weight (``data.episodes``).

``data.episodes`` in a training config takes any of::

    episodes: data/sim                      # one directory (or file)
    episodes: [data/robot, data/sim]        # several, pooled: every window equally likely
    episodes:                               # several, weighted
      - {path: data/robot, weight: 1.0}     # name: the directory's name unless given
      - {path: data/sim, weight: 1.0, name: sim}

Weights are shares of the training batches: a source with weight ``w`` supplies ``w / sum(w)``
of the training windows drawn, however many windows it holds (a small robot set is not drowned
by a large simulator set). Without any weight the sources are pooled, as one directory would be.
Sources are split into train/validation separately, so each keeps its share of validation
episodes and metrics can be reported per source.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mobile_vla.errors import ConfigError

_KEYS = ("path", "weight", "name")


@dataclasses.dataclass(frozen=True)
class DataSource:
    name: str
    path: str
    weight: float | None = None  # None: pooled (no weight given anywhere)


def parse_sources(value: Any, where: str = "data.episodes") -> list[DataSource]:
    """A ``data.episodes`` value (see the module doc) → sources; errors name the entry and field."""
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, dict)) or not value:
        raise ConfigError(f"{where}: expected a path, a list of paths, or a list of "
                          f"{{path, weight, name}} mappings, got {value!r}")
    entries = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(item, (str, os.PathLike)):
            item = {"path": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a path or a mapping with keys {', '.join(_KEYS)}, got {item!r}")
        unknown = sorted(set(item) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{at}: unknown key(s) {', '.join(unknown)}; expected {', '.join(_KEYS)}")
        path = item.get("path")
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigError(f"{at}.path: expected a directory or episode file, got {path!r}")
        weight = item.get("weight")
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                    or weight <= 0:
                raise ConfigError(f"{at}.weight: expected a positive number, got {weight!r}")
            weight = float(weight)
        name = item.get("name", Path(str(path)).name or str(path))
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"{at}.name: expected a non-empty name without '/', got {name!r}")
        entries.append((name, str(path), weight))
    names = [n for n, _, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: several sources are named {', '.join(duplicates)}; give each a distinct `name`")
    weighted = any(w is not None for _, _, w in entries)
    return [DataSource(n, p, (1.0 if w is None else w) if weighted else None) for n, p, w in entries]


def is_weighted(sources: Sequence[DataSource]) -> bool:
    return any(s.weight is not None for s in sources)


def window_weights(window_sources: Sequence[str], sources: Sequence[DataSource]) -> list[float]:
    """Sampling weight per window so that source ``s`` is drawn with probability ``w_s / sum(w)``.

    Args:
        window_sources: the source name of every window ``(num_windows,)``.
        sources: the weighted sources; a source without windows gives its share to the others.
    """
    counts: dict[str, int] = {}
    for name in window_sources:
        counts[name] = counts.get(name, 0) + 1
    weight = {s.name: (s.weight if s.weight is not None else 1.0) for s in sources}
    return [weight[name] / counts[name] for name in window_sources]
