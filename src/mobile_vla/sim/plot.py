"""Top-down trajectory plots (``mobile-vla sim plot``): one panel per scene, obstacles and the
goals in view (cup, baskets) drawn to scale, trajectories coloured by the instructed side (✕ marks a collision).

Sources: episode files written by ``sim collect`` (attrs ``trajectory``, ``obstacles``,
``target_xy``) and ``*.jsonl`` rollout records (:meth:`RolloutResult.to_record`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from mobile_vla.errors import MobileVLAError

SIDE_COLOURS = {"left": "tab:blue", "right": "tab:orange", None: "tab:gray"}


def load_records(root: str | Path) -> list[dict[str, Any]]:
    """Trajectory records from episode files and ``*.jsonl`` files under ``root``."""
    from mobile_vla.data.formats import list_episodes, read_episode

    root = Path(root)
    if not root.exists():
        raise MobileVLAError(f"{root}: no such file or directory")
    records = []
    for path in ([root] if root.suffix == ".jsonl" else sorted(root.rglob("*.jsonl"))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    if root.suffix != ".jsonl":
        for path in list_episodes(root):
            ep = read_episode(path, load_images=False)
            if "trajectory" not in ep.attrs:
                continue  # a real-robot file: no simulator trajectory
            records.append({
                "scene_seed": ep.attrs.get("scene_seed"),
                "side": ep.side,
                "collision": bool(ep.attrs.get("collision", False)),
                "trajectory": ep.attrs["trajectory"],
                "obstacles": ep.attrs["obstacles"],
                "target_xy": ep.attrs["target_xy"],
            })
    if not records:
        raise MobileVLAError(f"{root}: no simulator trajectories (expected sim episode files or *.jsonl records)")
    return records


# How each goal-like object is drawn: colour and radius, m (the basket's is its real radius).
LANDMARK_STYLE = {"cup": ("limegreen", 0.1), "basket": ("dimgray", 0.2)}


def record_landmarks(rec: dict[str, Any]) -> list[tuple[str, str | None, float, float]]:
    """``(object, side, x, y)`` of the goals a record's scene shows; records written before
    ``landmarks`` existed (and episode files) show their ``target_xy`` as the cup."""
    if "landmarks" in rec:
        return [(kind, side, float(x), float(y)) for kind, side, x, y in rec["landmarks"]]
    tx, ty = rec["target_xy"]
    return [("cup", None, float(tx), float(ty))]


def view_limits(recs: list[dict[str, Any]]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Plot limits ``((left, right), (bottom, top))`` of one scene's panel, m, in the top-down frame
    (page x = −y, page y = x): symmetric sideways and wide enough for every route, obstacle and the
    cup — ``varied`` scenes spread well beyond the ±1.5 m that suits ``classic`` ones."""
    points = [p for rec in recs for p in rec["trajectory"]]
    goals = record_landmarks(recs[0])
    half = max([1.5] + [abs(y) + 0.3 for *_, y in goals] + [abs(p[1]) + 0.2 for p in points]
               + [abs(y) + hy + 0.1 for _, y, _, hy in recs[0]["obstacles"]])
    bottom = min([-0.3] + [p[0] - 0.2 for p in points])
    top = max([4.0] + [x + 0.5 for _, _, x, _ in goals] + [p[0] + 0.2 for p in points])
    return (-half, half), (bottom, top)


def plot_trajectories(records: list[dict[str, Any]], out: str | Path, max_scenes: int = 16) -> Path:
    """Draw ``records`` grouped by scene into the PNG ``out``. Returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    scenes: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        scenes[rec.get("scene_seed")].append(rec)
    keys = list(scenes)[:max_scenes]
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        recs = scenes[key]
        # Top-down with +x (forward) up the page and +y (left) to the left, as the robot sees it.
        for x, y, hx, hy in recs[0]["obstacles"]:
            ax.add_patch(Rectangle((-(y + hy), x - hx), 2 * hy, 2 * hx, color="firebrick", alpha=0.8))
        for kind, _, x, y in record_landmarks(recs[0]):
            colour, radius = LANDMARK_STYLE.get(kind, LANDMARK_STYLE["cup"])
            ax.add_patch(Circle((-y, x), radius, color=colour))
        for rec in recs:
            xs = [p[0] for p in rec["trajectory"]]
            ys = [-p[1] for p in rec["trajectory"]]
            colour = SIDE_COLOURS.get(rec.get("side"), "tab:gray")
            ax.plot(ys, xs, "-o", ms=2, lw=1.2, color=colour, label=rec.get("side") or "none")
            if rec.get("collision"):
                ax.plot(ys[-1], xs[-1], "x", color="black", ms=8)
        ax.set_aspect("equal")
        xlim, ylim = view_limits(recs)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_title(f"scene {str(key)[-6:]}", fontsize=8)
        ax.tick_params(labelsize=6)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines() if not h.get_label().startswith("_")}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, title="instructed side")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
