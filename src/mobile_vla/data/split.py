"""Train/validation split by episode, grouped by scene, stable as episodes are added.

- Grouping: episodes sharing the file attribute ``scene_id`` (the two episodes of a simulator
  pair: same scene, left and right instruction) land in the same split, so validation never
  contains a scene seen in training. Without ``scene_id`` each episode (by file name) is its own group.
- Side balance: each group's draw is independent of its side (``left``, ``right``, ``both`` for
  a pair, ``none``), so both splits keep the side balance in expectation.
- Stability: a group's split depends only on its own name, ``seed`` and ``val_fraction``
  (a hash draw ``u(seed, group) < val_fraction``), so adding episodes (the demo's DAgger rounds)
  never moves an existing scene between the splits: a scene validated after one round was never
  trained on in an earlier one. No global random state is touched.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from mobile_vla.data.formats import read_labels
from mobile_vla.errors import MobileVLAError


def _group_and_side(path: Path) -> tuple[str, str]:
    ep = read_labels(path)
    scene = ep.attrs.get("scene_id")
    # the file name, not its absolute path: the split must not depend on where the data lives
    group = f"scene:{scene}" if scene not in (None, "") else f"file:{path.name}"
    return group, ep.side or "none"


def group_draw(group: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, group)``: the same on every machine and run."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_episodes(
    paths: Sequence[str | os.PathLike], val_fraction: float, seed: int = 0
) -> tuple[list[Path], list[Path]]:
    """Split episode files into ``(train_paths, val_paths)``, each sorted.

    A group goes to validation when its draw :func:`group_draw` is below ``val_fraction``, so
    each side stratum sends about ``val_fraction`` of its groups (not exactly: the price of
    stability). When that selects nothing but ``val_fraction > 0`` and there are at least two
    groups, the group of the largest stratum with the lowest draw goes to validation; when it
    selects every group, the one with the highest draw stays in training.

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

    val_groups = [g for g in sorted(members) if group_draw(g, seed) < val_fraction]
    if not val_groups and val_fraction > 0 and len(members) >= 2:
        largest = max(sorted(strata), key=lambda k: len(strata[k]))
        val_groups.append(min(strata[largest], key=lambda g: group_draw(g, seed)))
    if len(val_groups) == len(members):  # a few groups can all draw low: training keeps the highest
        val_groups.remove(max(val_groups, key=lambda g: group_draw(g, seed)))

    val = sorted(p for g in val_groups for p in members[g])
    val_set = set(val)
    return [p for p in paths if p not in val_set], val
