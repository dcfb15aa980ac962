"""Train/validation split by episode, grouped by scene, stratified by instructed side.

- Grouping: episodes sharing the file attribute ``scene_id`` (the two episodes of a simulator
  pair: same scene, left and right instruction) land in the same split, so validation never
  contains a scene seen in training. Without ``scene_id`` each episode is its own group.
- Stratification: groups are split separately per side (``left``, ``right``, ``both`` for a
  pair, ``none``), so both splits keep the side balance.
- Determinism: the result depends only on the set of paths, ``val_fraction`` and ``seed``
  (not on input order) and uses a local generator (no global random state is touched).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mobile_vla.data.formats import read_episode
from mobile_vla.errors import MobileVLAError


def _group_and_side(path: Path) -> tuple[str, str]:
    ep = read_episode(path, load_images=False)
    scene = ep.attrs.get("scene_id")
    group = f"scene:{scene}" if scene not in (None, "") else f"file:{path.resolve()}"
    return group, ep.side or "none"


def split_episodes(
    paths: Sequence[str | os.PathLike], val_fraction: float, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split episode files into ``(train_paths, val_paths)``, each sorted.

    Each side stratum contributes ``round(groups * val_fraction)`` groups to validation; when
    that rounds to nothing overall but ``val_fraction > 0`` and there are at least two groups,
    one group of the largest stratum goes to validation.

    Raises:
        MobileVLAError: ``val_fraction`` outside ``[0, 1)``.
        EpisodeError: an unreadable or invalid episode (names the file).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise MobileVLAError(f"val_fraction must be in [0, 1), got {val_fraction}")
    paths = sorted({Path(p) for p in paths})
    members: dict[str, list[Path]] = defaultdict(list)
    sides: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        group, side = _group_and_side(path)
        members[group].append(path)
        sides[group].add(side)

    strata: dict[str, list[str]] = defaultdict(list)
    for group in sorted(members):
        s = sides[group]
        strata[s.pop() if len(s) == 1 else "both"].append(group)

    rng = np.random.default_rng(seed)
    val_groups: list[str] = []
    for stratum in sorted(strata):
        groups = strata[stratum]
        order = rng.permutation(len(groups))
        val_groups += [groups[i] for i in order[: int(round(len(groups) * val_fraction))]]
    if not val_groups and val_fraction > 0 and len(members) >= 2:
        largest = max(sorted(strata), key=lambda k: len(strata[k]))
        val_groups.append(strata[largest][int(rng.integers(len(strata[largest])))])

    val = sorted(p for g in val_groups for p in members[g])
    val_set = set(val)
    return [p for p in paths if p not in val_set], val
