"""Rollout videos: the robot's camera beside a top-down view of the path so far, as an H.264 MP4.

Each video frame is ``[camera (upscaled) | top-down map]``: obstacles in red, the cup in green and
baskets in grey, the path so far coloured by the instructed side (the same colours as ``sim
plot``, the same window as its panel), the robot as a dot with a heading tick, and a caption with
the instruction and the outcome.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mobile_vla.data.video import write_mp4
from mobile_vla.sim.plot import LANDMARK_STYLE, record_landmarks, view_limits

# RGB of matplotlib's tab:blue / tab:orange / tab:gray, the colours `sim plot` gives each side.
SIDE_RGB = {"left": (31, 119, 180), "right": (255, 127, 14), None: (127, 127, 127)}
PANEL = 240  # pixels per panel side (even: yuv420p needs even dimensions)
CAPTION = 36  # pixels of text under the panels


def _to_px(x: float, y: float, view: tuple[float, float, float, float]) -> tuple[float, float]:
    """World ``(x forward, y left)`` → map pixel in ``view`` = ``(y_min, y_max, x_min, x_max)``, m:
    forward is up the page, left is left (as the robot sees)."""
    y0, y1, x0, x1 = view
    scale = PANEL / max(y1 - y0, x1 - x0)
    return (y1 - y) * scale - (scale * (y1 - y0) - PANEL) / 2, PANEL - (x - x0) * scale


def top_down(record: dict[str, Any], upto: int) -> Image.Image:
    """The map after ``upto`` steps of ``record`` (:meth:`RolloutResult.to_record`)."""
    img = Image.new("RGB", (PANEL, PANEL), (248, 248, 248))
    draw = ImageDraw.Draw(img)
    (left, right), (bottom, top) = view_limits([record])  # page x = -y
    view = (-right, -left, bottom, top)
    for x, y, hx, hy in record["obstacles"]:
        (ax, ay), (bx, by) = _to_px(x + hx, y + hy, view), _to_px(x - hx, y - hy, view)
        draw.rectangle([min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)], fill=(178, 34, 34))
    metres = PANEL / max(view[1] - view[0], view[3] - view[2])  # pixels per metre
    for kind, _, x, y in record_landmarks(record):
        px, py = _to_px(x, y, view)
        colour, radius = LANDMARK_STYLE.get(kind, LANDMARK_STYLE["cup"])  # CSS names: PIL reads them too
        r = max(4.0, radius * metres)
        draw.ellipse([px - r, py - r, px + r, py + r], fill=colour)
    colour = SIDE_RGB.get(record.get("side"), SIDE_RGB[None])
    poses = record["trajectory"][: upto + 1]
    points = [_to_px(p[0], p[1], view) for p in poses]
    if len(points) > 1:
        draw.line(points, fill=colour, width=3)
    px, py = points[-1]
    yaw = poses[-1][2]
    draw.ellipse([px - 5, py - 5, px + 5, py + 5], outline=(0, 0, 0), fill=colour, width=1)
    hx, hy = _to_px(poses[-1][0] + 0.3 * math.cos(yaw), poses[-1][1] + 0.3 * math.sin(yaw), view)
    draw.line([(px, py), (hx, hy)], fill=(0, 0, 0), width=2)
    return img


def compose(camera_rgb: np.ndarray, record: dict[str, Any], step: int, caption: str) -> np.ndarray:
    """One video frame ``(PANEL + CAPTION, 2 * PANEL, 3)`` uint8 RGB."""
    canvas = Image.new("RGB", (2 * PANEL, PANEL + CAPTION), (255, 255, 255))
    canvas.paste(Image.fromarray(camera_rgb).resize((PANEL, PANEL), Image.NEAREST), (0, 0))
    canvas.paste(top_down(record, step), (PANEL, 0))
    draw = ImageDraw.Draw(canvas)
    colour = SIDE_RGB.get(record.get("side"), SIDE_RGB[None])
    draw.rectangle([0, PANEL, 2 * PANEL, PANEL + 4], fill=colour)
    draw.text((6, PANEL + 6), record.get("instruction", "")[:80], fill=(0, 0, 0))
    draw.text((6, PANEL + 20), caption, fill=(60, 60, 60))
    return np.asarray(canvas)


def outcome(record: dict[str, Any]) -> str:
    if record.get("success"):
        return "success"
    return "collision" if record.get("collision") else "timeout"


def write_rollout_video(frames: np.ndarray, record: dict[str, Any], path: str | Path, fps: float = 2.5) -> Path:
    """Camera frames ``(T, S, S, 3)`` RGB uint8 + the rollout's record → an MP4 at ``path``.

    The last frame is held for a second so the outcome stays readable when the video loops.
    """
    T = len(frames)
    video = [compose(frames[t], record, t, f"step {t + 1}/{T}") for t in range(T)]
    final = compose(frames[-1], record, T, f"step {T}/{T}: {outcome(record)}, passed {record.get('passed_side')}")
    video += [final] * max(1, round(fps))
    return write_mp4(video, path, fps)
