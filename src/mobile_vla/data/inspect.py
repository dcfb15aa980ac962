"""``mobile-vla data inspect``: validate episode files and summarise what they contain."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.data.formats import list_episodes, read_episode
from mobile_vla.errors import EpisodeError, MobileVLAError
from mobile_vla.vocab.actions import ACTION_NAMES, CLASS_NAMES, action_class


def inspect_episodes(path: str | os.PathLike, check_images: bool = False) -> dict[str, Any]:
    """Validate every episode under ``path`` (a file or a folder) and summarise them.

    Args:
        check_images: also decode every frame (catches corrupt compressed image chunks; slow
            for 720p data).

    Returns:
        ``episodes``, ``valid_episodes``, ``frames`` (of valid episodes), ``instructions``
        (text → episode count), ``sides`` (left/right/other → episode count), ``action_mean``,
        ``action_std`` (per dimension of ``[linear_x, linear_y, angular_z]``, over all frames),
        ``action_classes`` (class name → frame count), ``image_shapes`` (``HxW`` → count),
        ``with_instruction`` (files carrying ``language_instruction``), ``with_counterfactual``,
        and ``errors`` (list of ``{file, key, error}``).

    Raises:
        MobileVLAError: ``path`` does not exist or holds no ``*.h5`` file.
    """
    root = Path(path)
    if not root.exists():
        raise MobileVLAError(f"{root}: no such file or directory")
    files = list_episodes(root)
    if not files:
        raise MobileVLAError(f"{root}: no episode files (*.h5)")

    instructions: Counter[str] = Counter()
    sides: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    actions: list[np.ndarray] = []
    errors: list[dict[str, Any]] = []
    with_instruction = with_counterfactual = 0
    for file in files:
        try:
            ep = read_episode(file, load_images=check_images)
        except EpisodeError as exc:
            errors.append({"file": str(file), "key": exc.key, "error": exc.reason})
            continue
        instructions[ep.instruction] += 1
        sides[ep.side if ep.side in ("left", "right") else "other"] += 1
        shapes[f"{ep.image_shape[0]}x{ep.image_shape[1]}"] += 1
        classes.update(CLASS_NAMES[c] for c in action_class(ep.actions))
        with_instruction += int(not ep.instruction_from_name)
        with_counterfactual += int(ep.counterfactual_actions is not None)
        actions.append(ep.actions)

    all_actions = np.concatenate(actions) if actions else np.zeros((0, 3), np.float32)
    return {
        "path": str(root),
        "episodes": len(files),
        "valid_episodes": len(actions),
        "frames": int(len(all_actions)),
        "instructions": dict(instructions.most_common()),
        "sides": dict(sorted(sides.items())),
        "action_names": list(ACTION_NAMES),
        "action_mean": all_actions.mean(0).tolist() if len(all_actions) else None,
        "action_std": all_actions.std(0).tolist() if len(all_actions) else None,
        "action_classes": dict(classes.most_common()),
        "image_shapes": dict(shapes.most_common()),
        "with_instruction": with_instruction,
        "with_counterfactual": with_counterfactual,
        "errors": errors,
    }


def format_report(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`inspect_episodes`' result."""
    lines = [
        f"{report['path']}: {report['valid_episodes']}/{report['episodes']} valid episodes, "
        f"{report['frames']} frames",
        f"sides: {report['sides']}",
        f"image shapes: {report['image_shapes']}; with language_instruction: {report['with_instruction']}; "
        f"with counterfactual_actions: {report['with_counterfactual']}",
    ]
    if report["action_mean"] is not None:
        fmt = ", ".join(
            f"{n}={m:+.3f}±{s:.3f}"
            for n, m, s in zip(report["action_names"], report["action_mean"], report["action_std"])
        )
        lines.append(f"actions (mean±std): {fmt}")
        lines.append(f"action classes: {report['action_classes']}")
    lines.append("instructions:")
    lines += [f"  {count:5d}  {text}" for text, count in report["instructions"].items()]
    if report["errors"]:
        lines.append(f"errors ({len(report['errors'])}):")
        lines += [f"  {e['file']}" + (f" [{e['key']}]" if e["key"] else "") + f": {e['error']}"
                  for e in report["errors"]]
    return "\n".join(lines)
