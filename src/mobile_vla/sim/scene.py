"""Scene sampling: one seed → one :class:`SceneSpec` (obstacles, cup, colours, lights, start, camera).

World frame: +x is forward from the start pose, +y is left, z is up; metres and radians.
The robot starts near the origin facing +x; the obstacle cluster sits 2.0–2.5 m ahead and
the cup 2.2–2.6 m behind it. There are no walls, so both sides of the cluster are always
passable; ranges are chosen so that the boxes are large in the image and the (taller) cup
is visible above them from the start.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

ORIENTATIONS = ("hori", "vert")

# Saturated obstacle colours, a distinct cup colour family, muted floors: high contrast at 112 px.
_BOX_COLOURS = np.array(
    [[0.85, 0.12, 0.10], [0.95, 0.45, 0.05], [0.10, 0.25, 0.85], [0.55, 0.15, 0.75], [0.80, 0.10, 0.45]]
)
CUP_COLOURS = np.array([[0.10, 0.85, 0.20], [0.95, 0.90, 0.10], [0.05, 0.85, 0.85]])
# The classic preset draws the first three (_CLASSIC_FLOOR_TEXTURES); the others add finer and coarser checkers.
FLOOR_TEXTURES = ("checker", "flat", "gradient", "checker_fine", "checker_coarse")
_CLASSIC_FLOOR_TEXTURES = 3
DISTRACTOR_SHAPES = ("box", "sphere", "cylinder")

# Streams of scene seeds: the same base seed gives disjoint collection and evaluation streams.
_COLLECT_STREAM, _EVAL_STREAM, _BASELINE_STREAM = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned box obstacle standing on the floor (centre ``x, y``; half sizes)."""

    x: float
    y: float
    half_x: float
    half_y: float
    half_z: float
    rgba: tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Distractor:
    """An object that is neither obstacle cluster nor target, standing on the floor at ``x, y``.

    ``size``: half sizes ``(hx, hy, hz)`` for a box, ``(radius,)`` for a sphere, ``(radius, half_height)``
    for a cylinder (the cup's shape: never in the cup's colour family).
    """

    shape: str  # one of DISTRACTOR_SHAPES
    x: float
    y: float
    size: tuple[float, ...]
    rgba: tuple[float, float, float, float]

    @property
    def radius(self) -> float:
        """Radius of the footprint's bounding circle, m."""
        return math.hypot(*self.size[:2]) if self.shape == "box" else self.size[0]

    @property
    def height(self) -> float:
        return {"box": 2 * self.size[-1], "sphere": 2 * self.size[0], "cylinder": 2 * self.size[-1]}[self.shape]


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """Everything that varies between scenes; the world is a pure function of it."""

    seed: int
    orientation: str  # hori: boxes side by side across the path; vert: along it
    boxes: tuple[Box, ...]
    target_xy: tuple[float, float]
    cup_radius: float
    cup_height: float
    cup_rgba: tuple[float, float, float, float]
    floor_texture: int  # index into FLOOR_TEXTURES
    floor_rgba: tuple[float, float, float, float]
    light_dir: tuple[float, float, float]
    light_diffuse: float
    light_ambient: float
    start_pose: tuple[float, float, float]  # x, y, yaw
    camera_height: float
    camera_pitch: float  # radians below the horizon
    camera_fovy: float  # degrees
    distractors: tuple[Distractor, ...] = ()

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    @property
    def obstacle_bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, x_max, y_min, y_max)`` of the union of the boxes."""
        return (
            min(b.x - b.half_x for b in self.boxes),
            max(b.x + b.half_x for b in self.boxes),
            min(b.y - b.half_y for b in self.boxes),
            max(b.y + b.half_y for b in self.boxes),
        )

    @property
    def obstacle_center(self) -> tuple[float, float]:
        x0, x1, y0, y1 = self.obstacle_bounds
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def distance(self) -> str:
        """The real data's distance label (close | medium | far) from the start-to-cup distance."""
        d = math.dist(self.start_pose[:2], self.target_xy)
        return "close" if d < 5.1 else "medium" if d < 5.45 else "far"  # terciles

    def landmarks(self) -> list[tuple[str, str | None, tuple[float, float]]]:
        """``(object, side, xy)`` of every goal-like object in view: here the cup, unless it is hidden
        (a task's scenes may hide it and add their own, :class:`mobile_vla.sim.basket.BasketScene`)."""
        return [("cup", None, self.target_xy)] if self.cup_rgba[3] > 0 else []

    def obstacles_array(self) -> np.ndarray:
        """``(n_boxes, 4)`` float32 ``[x, y, half_x, half_y]`` (for episode attributes and plots)."""
        return np.array([[b.x, b.y, b.half_x, b.half_y] for b in self.boxes], np.float32)


def _stream_seed(base_seed: int, stream: int, index: int) -> int:
    seq = np.random.SeedSequence(entropy=int(base_seed), spawn_key=(stream, int(index)))
    return int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))  # 63 bits: fits an HDF5 int64 attr


def scene_seed(base_seed: int, index: int) -> int:
    """Seed of scene ``index`` of a collection run with ``base_seed``."""
    return _stream_seed(base_seed, _COLLECT_STREAM, index)


def eval_scene_seed(base_seed: int, index: int) -> int:
    """Seed of evaluation scene ``index``: a stream disjoint from :func:`scene_seed`'s for the same base."""
    return _stream_seed(base_seed, _EVAL_STREAM, index)


def baseline_scene_seed(base_seed: int, index: int) -> int:
    """Seed of scene ``index`` a baseline is fitted on: disjoint from collection and evaluation streams."""
    return _stream_seed(base_seed, _BASELINE_STREAM, index)


def rgba_of(rgb: np.ndarray) -> tuple[float, float, float, float]:
    return tuple(float(c) for c in np.clip(rgb, 0.0, 1.0)) + (1.0,)  # type: ignore[return-value]


def _boxes(rng: np.random.Generator, n: int, orientation: str) -> list[tuple[float, float, float, float]]:
    """Box footprints ``(dx, dy, half_x, half_y)`` relative to the cluster's front-centre."""
    u = rng.uniform
    if n == 1:
        hx, hy = (u(0.12, 0.20), u(0.30, 0.45)) if orientation == "hori" else (u(0.30, 0.45), u(0.15, 0.22))
        return [(hx, 0.0, hx, hy)]
    if orientation == "hori":  # side by side; the gap is far narrower than the robot
        hx, hy, gap = u(0.12, 0.20), u(0.18, 0.28), u(0.0, 0.05)
        off = hy + gap / 2
        return [(hx, off, hx, hy), (hx, -off, hx, hy)]
    hx, hy, gap = u(0.15, 0.22), u(0.18, 0.28), u(0.15, 0.35)
    return [(hx, 0.0, hx, hy), (3 * hx + gap, 0.0, hx, hy)]


def light_direction(u, max_tilt: float) -> tuple[float, float, float]:
    """A downward unit light direction up to ``max_tilt`` rad off vertical (draws tilt, then azimuth from ``u``)."""
    tilt, azimuth = u(0.0, max_tilt), u(-math.pi, math.pi)
    return (math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth), -math.cos(tilt))


def camera_mount(u) -> dict[str, float]:
    """``SceneSpec``'s camera fields, the same ranges on every preset: height (m), pitch (rad), fovy (deg)."""
    return {"camera_height": u(0.45, 0.52), "camera_pitch": math.radians(u(16.0, 22.0)),
            "camera_fovy": u(56.0, 62.0)}


def sample_scene(seed: int, num_boxes: int | None = None, orientation: str | None = None) -> SceneSpec:
    """Sample a scene from ``seed`` (deterministic). ``num_boxes``/``orientation`` fix the layout."""
    rng = np.random.default_rng(int(seed))
    n = int(num_boxes) if num_boxes is not None else int(rng.integers(1, 3))
    orient = orientation if orientation is not None else ORIENTATIONS[int(rng.integers(2))]
    if n not in (1, 2) or orient not in ORIENTATIONS:
        raise ValueError(f"expected 1|2 boxes and orientation in {ORIENTATIONS}, got {n}, {orient!r}")
    u = rng.uniform
    front_x, center_y = u(2.0, 2.5), u(-0.15, 0.15)
    box_rgb = _BOX_COLOURS[int(rng.integers(len(_BOX_COLOURS)))] * u(0.85, 1.0)
    half_z = u(0.10, 0.16)
    boxes = tuple(
        Box(front_x + dx, center_y + dy, hx, hy, half_z, rgba_of(box_rgb + rng.normal(0, 0.04, 3)))
        for dx, dy, hx, hy in _boxes(rng, n, orient)
    )
    back_x = max(b.x + b.half_x for b in boxes)
    # Far enough behind that the cup stays ≥ 15° inside the 16:9 view on the expert's whole route
    # (at 1.4–1.8 m it sat 40–57° off the heading past the lane, outside a ≈92° view).
    target = (back_x + u(2.2, 2.6), center_y + u(-0.2, 0.2))
    light_dir = light_direction(u, 0.6)  # before the fields below: the draw order fixes every scene
    return SceneSpec(
        seed=int(seed),
        orientation=orient,
        boxes=boxes,
        target_xy=(float(target[0]), float(target[1])),
        cup_radius=u(0.10, 0.13),
        cup_height=u(0.45, 0.55),
        cup_rgba=rgba_of(CUP_COLOURS[int(rng.integers(len(CUP_COLOURS)))] * u(0.85, 1.0)),
        floor_texture=int(rng.integers(_CLASSIC_FLOOR_TEXTURES)),
        floor_rgba=rgba_of(np.full(3, u(0.45, 0.75)) + rng.normal(0, 0.04, 3)),
        light_dir=light_dir,
        light_diffuse=u(0.55, 0.9),
        light_ambient=u(0.2, 0.4),
        start_pose=(0.0, u(-0.25, 0.25), u(-0.05, 0.05)),
        **camera_mount(u),
    )
