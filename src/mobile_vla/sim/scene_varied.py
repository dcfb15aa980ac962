"""The ``varied`` and ``cluttered`` scene presets: scenes a policy can only solve by looking.

In the ``classic`` preset (:func:`mobile_vla.sim.scene.sample_scene`) the cluster moves ±0.15 m
sideways and the cup sits near its centre line, so one fixed sideways move and one fixed return
solve most scenes without a glance at the camera. Here (world frame as in ``scene.py``):

- start: lateral position uniform over ±0.5 m, heading uniform over ±15°;
- obstacle cluster: 1–3 boxes (side by side: ``hori``; in line: ``vert``) of more sizes, its
  front 2.0–2.5 m ahead, its centre uniform over ±0.8 m sideways *relative to the robot's start*;
- cup: lateral offset from the cluster's centre uniform over ±0.8 m, 1.2–3.0 m behind the cluster;
- colours: a wider obstacle palette (never the cup's colour family), and in
  :data:`LOW_CONTRAST_FRACTION` of the scenes a box colour whose luminance contrast with the
  floor is low (Michelson contrast of relative luminances below :data:`LOW_CONTRAST`);
  five floor textures, wider light ranges.

A scene whose cup lies more than :data:`MAX_CUP_BEARING` off the start heading or farther than
:data:`MAX_CUP_DISTANCE` from the start is redrawn (from the same seed's generator, so still
deterministic): the camera's horizontal view is ≈ ±45°, a cup at its edge is a few pixels, and
a cup 6–7 m away covers fewer than 20 of the 112-px frame's pixels.

``cluttered`` adds 1–4 distractors (:class:`Distractor`): boxes and spheres in any colour,
cylinders — the cup's shape — never in the cup's colour family. Up to three stand beside the path
(:func:`_beside_path`), alternating between the left and the right side: just outside the corridor
the expert's routes on *both* sides leave free (:data:`DISTRACTOR_CLEARANCE` from the robot's edge,
:func:`expert_routes`), preferably where the *nominal* route — the mean expert route, which a robot
that does not look drives (:data:`NOMINAL_VELOCITIES`, the blind baseline's replay) — runs into
them; a fourth stands off the path (beyond the cup or far to a side). All stay off the
start-to-cup sight line and are lower than the cup, so both sides stay passable and the cup
visible — while a route that does not follow the scene's own meets them.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Callable

import numpy as np

from mobile_vla.sim.scene import (
    CUP_COLOURS,
    DISTRACTOR_SHAPES,
    FLOOR_TEXTURES,
    ORIENTATIONS,
    Box,
    Distractor,
    SceneSpec,
    camera_mount,
    light_direction,
    rgba_of,
)

CLUSTER_LATERAL = 0.8  # m, ± relative to the robot's start
CUP_LATERAL = 0.8  # m, ± relative to the cluster's centre
CUP_BEHIND = (1.2, 3.0)  # m behind the cluster's back face
START_LATERAL = 0.5  # m, ±
START_HEADING = math.radians(15.0)  # ±
MAX_CUP_BEARING = math.radians(36.0)
MAX_CUP_DISTANCE = 5.6  # m from the start
LOW_CONTRAST = 0.15  # Michelson contrast of relative luminances below this is "low"
LOW_CONTRAST_FRACTION = 0.3
# Hues (degrees) of the cup's colour family: yellow through green to cyan.
CUP_HUES = (45.0, 200.0)
DISTRACTORS = (1, 4)
DISTRACTOR_CLEARANCE = 0.25  # m between a distractor's footprint and the robot's edge on the expert's routes
BESIDE_SLACK = 0.05  # m: a distractor beside the path stands at most this much farther out than DISTRACTOR_CLEARANCE
BESIDE_FROM = 1.0  # m before the cluster's front face: where distractors beside the path may begin
BESIDE_TO = 0.5  # m past the cup: where they end
CLUSTER_MARGIN = 0.15  # m between a distractor's footprint and the cluster's bounding box
OFF_PATH = (3,)  # which distractors, by index, stand off the path (beyond the cup or far to a side)
# The mean route of a robot that does not look: the mean over 100 clean expert episodes of ``varied`` scenes
# (baseline seed stream of base seed 0) of the expert's robot-frame (linear_x, linear_y) at each 0.4-s step,
# i.e. the actions the blind baseline replays (mobile_vla.sim.baselines; a test checks they still agree).
NOMINAL_VELOCITIES = {
    "left": ((0.65, 0.43), (0.65, 0.43), (0.65, 0.43), (0.65, 0.43), (0.65, 0.42), (0.66, 0.37), (0.67, 0.29),
             (0.72, 0.14), (0.77, 0.02), (0.77, -0.03), (0.69, -0.17), (0.60, -0.32), (0.54, -0.47), (0.53, -0.51),
             (0.57, -0.46), (0.60, -0.42), (0.66, -0.35), (0.69, -0.30), (0.71, -0.27), (0.73, -0.24), (0.69, -0.31)),
    "right": ((0.66, -0.41), (0.66, -0.41), (0.66, -0.41), (0.66, -0.41), (0.66, -0.40), (0.67, -0.35), (0.70, -0.25),
              (0.73, -0.11), (0.78, -0.03), (0.77, 0.02), (0.69, 0.16), (0.58, 0.35), (0.51, 0.49), (0.52, 0.51),
              (0.56, 0.46), (0.61, 0.41), (0.66, 0.35), (0.70, 0.30), (0.72, 0.28), (0.76, 0.24), (0.79, 0.10),
              (0.80, 0.02)),
}
NOMINAL_DT = 0.4  # s per step of NOMINAL_VELOCITIES (the expert's control period)
_ROBOT_RADIUS = 0.2
_ROUTE_STEPS = 60
_ARRIVED = 0.35  # m: the task's success radius
_MAX_DRAWS = 200


def luminance(rgb) -> float:
    """Relative luminance (Rec. 709 weights on linear-ish RGB in [0, 1])."""
    r, g, b = np.asarray(rgb, np.float64)[:3]
    return float(0.2126 * r + 0.7152 * g + 0.0722 * b)


def contrast(rgb_a, rgb_b) -> float:
    """Michelson contrast ``(Lmax - Lmin) / (Lmax + Lmin)`` of two colours' relative luminances."""
    a, b = luminance(rgb_a), luminance(rgb_b)
    return abs(a - b) / max(a + b, 1e-9)


def in_cup_family(rgb) -> bool:
    """Whether a colour reads as one of the cup's (saturated yellow, green or cyan)."""
    h, s, v = colorsys.rgb_to_hsv(*np.clip(np.asarray(rgb, np.float64)[:3], 0, 1))
    return CUP_HUES[0] <= h * 360 <= CUP_HUES[1] and s > 0.35 and v > 0.25


def _colour_outside_cup_family(rng: np.random.Generator) -> np.ndarray:
    """A random colour: any hue outside the cup's family, or a grey/brown/white/black."""
    while True:
        if rng.random() < 0.25:  # unsaturated: greys, whites, near-blacks
            rgb = np.full(3, rng.uniform(0.08, 0.95)) + rng.normal(0, 0.03, 3)
        else:
            hue = rng.uniform(CUP_HUES[1], CUP_HUES[0] + 360) % 360
            rgb = np.array(colorsys.hsv_to_rgb(hue / 360, rng.uniform(0.4, 1.0), rng.uniform(0.35, 1.0)))
        rgb = np.clip(rgb, 0, 1)
        if not in_cup_family(rgb):
            return rgb


def _low_contrast_colour(rng: np.random.Generator, floor_rgb: np.ndarray) -> np.ndarray:
    """A colour outside the cup's family whose luminance contrast with ``floor_rgb`` is below LOW_CONTRAST."""
    target = luminance(floor_rgb)
    while True:
        rgb = _colour_outside_cup_family(rng)
        rgb = np.clip(rgb * target * rng.uniform(0.85, 1.15) / max(luminance(rgb), 1e-3), 0, 1)
        if contrast(rgb, floor_rgb) < LOW_CONTRAST and not in_cup_family(rgb):
            return rgb


def _box_footprints(rng: np.random.Generator, n: int, orientation: str) -> list[tuple[float, float, float, float]]:
    """``(dx, dy, half_x, half_y)`` relative to the cluster's front-centre; real-robot layouts of 1–3 boxes."""
    u = rng.uniform
    if n == 1:
        hx, hy = (u(0.10, 0.25), u(0.25, 0.55)) if orientation == "hori" else (u(0.25, 0.55), u(0.12, 0.25))
        return [(hx, 0.0, hx, hy)]
    if orientation == "hori":  # side by side, gaps far narrower than the robot
        hx, hy = u(0.10, 0.22), (u(0.15, 0.32) if n == 2 else u(0.12, 0.22))
        gap = u(0.0, 0.05)
        offsets = (np.arange(n) - (n - 1) / 2) * (2 * hy + gap)
        return [(hx, float(o), hx, hy) for o in offsets]
    hx, hy, gap = u(0.12, 0.25) if n == 2 else u(0.12, 0.20), u(0.15, 0.30), u(0.10, 0.35)
    return [(hx + k * (2 * hx + gap), 0.0, hx, hy) for k in range(n)]


def _box_shade(rgb: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """One box's shade of the cluster's colour; the unjittered colour if the jitter lands in the cup's family."""
    shaded = np.clip(rgb + jitter, 0, 1)
    return rgb if in_cup_family(shaded) else shaded


def _draw_varied(rng: np.random.Generator, seed: int) -> SceneSpec:
    u = rng.uniform
    start_y, yaw = u(-START_LATERAL, START_LATERAL), u(-START_HEADING, START_HEADING)
    n = int(rng.integers(1, 4))
    orient = ORIENTATIONS[int(rng.integers(2))]
    front_x, center_y = u(2.0, 2.5), start_y + u(-CLUSTER_LATERAL, CLUSTER_LATERAL)
    floor_rgb = np.full(3, u(0.3, 0.8)) + rng.normal(0, 0.05, 3)
    box_rgb = (_low_contrast_colour(rng, floor_rgb) if rng.random() < LOW_CONTRAST_FRACTION
               else _colour_outside_cup_family(rng))
    half_z = u(0.08, 0.18)
    boxes = tuple(
        Box(front_x + dx, center_y + dy, hx, hy, half_z, rgba_of(_box_shade(box_rgb, rng.normal(0, 0.02, 3))))
        for dx, dy, hx, hy in _box_footprints(rng, n, orient)
    )
    back_x = max(b.x + b.half_x for b in boxes)
    target = (back_x + u(*CUP_BEHIND), center_y + u(-CUP_LATERAL, CUP_LATERAL))
    light_dir = light_direction(u, 0.8)  # before the fields below: the draw order fixes every scene
    return SceneSpec(
        seed=int(seed),
        orientation=orient,
        boxes=boxes,
        target_xy=(float(target[0]), float(target[1])),
        cup_radius=u(0.13, 0.17),
        cup_height=u(0.50, 0.60),
        cup_rgba=rgba_of(CUP_COLOURS[int(rng.integers(len(CUP_COLOURS)))] * u(0.85, 1.0)),
        floor_texture=int(rng.integers(len(FLOOR_TEXTURES))),
        floor_rgba=rgba_of(floor_rgb),
        light_dir=light_dir,
        light_diffuse=u(0.45, 0.95),
        light_ambient=u(0.15, 0.45),
        start_pose=(0.0, float(start_y), float(yaw)),
        **camera_mount(u),
    )


def cup_bearing(scene: SceneSpec) -> float:
    """Angle (rad) between the start heading and the direction from the start to the cup."""
    x, y, yaw = scene.start_pose
    b = math.atan2(scene.target_xy[1] - y, scene.target_xy[0] - x) - yaw
    return (b + math.pi) % (2 * math.pi) - math.pi


def sample_varied_scene(seed: int) -> SceneSpec:
    """A ``varied`` scene from ``seed`` (deterministic)."""
    rng = np.random.default_rng(int(seed))
    for _ in range(_MAX_DRAWS):
        scene = _draw_varied(rng, seed)
        far = math.dist(scene.start_pose[:2], scene.target_xy) > MAX_CUP_DISTANCE
        if abs(cup_bearing(scene)) <= MAX_CUP_BEARING and not far:
            return scene
    raise RuntimeError(f"scene seed {seed}: no varied scene with the cup in view in {_MAX_DRAWS} draws")


# -- cluttered ---------------------------------------------------------------------------
def expert_routes(scene: SceneSpec) -> list[np.ndarray]:
    """Per side, ``(K, 2)`` the expert's route from the start to the cup (kinematic: the velocity
    actuators track commands closely, so this is the route the simulator drives within centimetres)."""
    from mobile_vla.sim.expert import ExpertConfig, expert_action

    cfg = ExpertConfig()
    routes = []
    for side in ("left", "right"):
        pose = np.array(scene.start_pose, np.float64)
        points = [pose[:2].copy()]
        for _ in range(_ROUTE_STEPS):
            a = expert_action(scene, pose, side, cfg)
            c, s = math.cos(pose[2]), math.sin(pose[2])
            pose[:2] += np.array([c * a[0] - s * a[1], s * a[0] + c * a[1]]) * cfg.control_dt
            points.append(pose[:2].copy())
            if math.dist(pose[:2], scene.target_xy) <= _ARRIVED:
                break
        routes.append(np.array(points))
    return routes


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


def route_distance(point, route: np.ndarray) -> float:
    """Distance (m) from ``point`` (2,) to the polyline ``route`` (K, 2)."""
    p = np.asarray(point, np.float64)
    return min(_segment_distance(p, route[k], route[k + 1]) for k in range(len(route) - 1))


def distractor_fits(scene: SceneSpec, d: Distractor, others: list[Distractor], routes: list[np.ndarray]) -> bool:
    """Clear of both of the expert's ``routes``, the cluster, the cup's sight line and the other distractors."""
    p = np.array([d.x, d.y])
    if any(route_distance(p, route) < _ROBOT_RADIUS + d.radius + DISTRACTOR_CLEARANCE for route in routes):
        return False
    x0, x1, y0, y1 = scene.obstacle_bounds
    m = d.radius + CLUSTER_MARGIN
    if x0 - m < d.x < x1 + m and y0 - m < d.y < y1 + m:
        return False
    start, cup = np.asarray(scene.start_pose[:2]), np.asarray(scene.target_xy)
    if _segment_distance(p, start, cup + (cup - start) * 0.3) < d.radius + scene.cup_radius + 0.25:
        return False
    if math.dist(p, cup) < d.radius + scene.cup_radius + 0.5:
        return False
    return all(math.dist(p, (o.x, o.y)) > d.radius + o.radius + 0.1 for o in others)


def nominal_routes(scene: SceneSpec) -> list[np.ndarray]:
    """Per side (left, right), ``(K, 2)`` the route :data:`NOMINAL_VELOCITIES` drives from the scene's start
    pose: where a robot that does not look goes (the blind baseline's route)."""
    x, y, yaw = scene.start_pose
    c, s = math.cos(yaw), math.sin(yaw)
    routes = []
    for side in ("left", "right"):
        v = np.array(NOMINAL_VELOCITIES[side], np.float64)
        step = np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1) * NOMINAL_DT
        routes.append(np.vstack([[x, y], np.array([x, y]) + np.cumsum(step, axis=0)]))
    return routes


def _nearest_on_routes(q: np.ndarray, routes: list[np.ndarray]) -> tuple[float, np.ndarray, np.ndarray]:
    """``(distance, nearest point, that segment's direction)`` from ``q`` to the nearest of ``routes``."""
    best = (math.inf, q, np.array([1.0, 0.0]))
    for route in routes:
        a, ab = route[:-1], np.diff(route, axis=0)
        t = np.clip(np.einsum("ij,ij->i", q - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0.0, 1.0)
        near = a + t[:, None] * ab
        dist = np.linalg.norm(q - near, axis=1)
        k = int(np.argmin(dist))
        if dist[k] < best[0]:
            best = (float(dist[k]), near[k], ab[k])
    return best


def _push_out(rng: np.random.Generator, q: np.ndarray, routes: list[np.ndarray], need: float) -> np.ndarray:
    """``q`` moved straight away from the nearest of ``routes`` until it is ``need`` from each (a few passes)."""
    for _ in range(4):
        dist, near, direction = _nearest_on_routes(q, routes)
        if dist >= need - 1e-6:
            break
        if dist > 1e-6:
            away = (q - near) / dist
        else:  # on the route: to a random side of it
            away = np.array([-direction[1], direction[0]]) / max(float(np.linalg.norm(direction)), 1e-9)
            away = away if rng.random() < 0.5 else -away
        q = near + away * need
    return q


def _beside_path(rng: np.random.Generator, scene: SceneSpec, nominal: np.ndarray, radius: float,
                 routes: list[np.ndarray], fits: Callable[[np.ndarray], bool]) -> np.ndarray | None:
    """A spot just outside the corridor the expert's ``routes`` leave free, next to the ``nominal`` route.

    Points of ``nominal`` from :data:`BESIDE_FROM` before the cluster to :data:`BESIDE_TO` past the cup
    are pushed out of the corridor (``ROBOT_RADIUS + DISTRACTOR_CLEARANCE + radius`` plus up to
    :data:`BESIDE_SLACK` from both routes); of those that ``fits``, one the nominal route still runs
    into is preferred — a robot that drives the average route without looking meets it, the expert
    passes it with :data:`DISTRACTOR_CLEARANCE` to spare. ``None`` if no spot fits.
    """
    x0, tx = scene.obstacle_bounds[0], scene.target_xy[0]
    dense = np.concatenate([np.linspace(nominal[k], nominal[k + 1], 4, endpoint=False)
                            for k in range(len(nominal) - 1)])
    dense = dense[(dense[:, 0] >= x0 - BESIDE_FROM) & (dense[:, 0] <= tx + BESIDE_TO)]
    need = _ROBOT_RADIUS + DISTRACTOR_CLEARANCE + radius + rng.uniform(0.01, BESIDE_SLACK)
    spots, blocking = [], []
    for q in dense:
        p = _push_out(rng, q, routes, need)
        if fits(p):
            spots.append(p)
            if float(np.linalg.norm(p - q)) < _ROBOT_RADIUS + radius - 0.05:
                blocking.append(p)
    pool = blocking or spots
    return pool[int(rng.integers(len(pool)))] if pool else None


def _distractor_look(rng: np.random.Generator) -> tuple[str, tuple[float, ...], np.ndarray]:
    """``(shape, size, rgb)``: boxes and spheres in any colour, cylinders never in the cup's colour family."""
    u = rng.uniform
    shape = DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))]
    if shape == "box":
        size: tuple[float, ...] = (u(0.06, 0.16), u(0.06, 0.16), u(0.05, 0.18))
    elif shape == "sphere":
        size = (u(0.06, 0.16),)
    else:
        size = (u(0.05, 0.12), u(0.08, 0.2))
    if shape == "cylinder" or rng.random() < 0.6:
        rgb = _colour_outside_cup_family(rng)
    else:  # a box or sphere may wear the cup's colours: only the shape tells it from the cup
        rgb = CUP_COLOURS[int(rng.integers(len(CUP_COLOURS)))] * u(0.85, 1.0)
    return shape, tuple(float(v) for v in size), rgb


def _off_path(rng: np.random.Generator, scene: SceneSpec) -> tuple[float, float]:
    u = rng.uniform
    tx, ty = scene.target_xy
    if rng.random() < 0.5:  # beyond the cup
        return tx + u(0.9, 2.0), ty + u(-1.5, 1.5)
    return u(0.8, tx), scene.start_pose[1] + (1 if rng.random() < 0.5 else -1) * u(2.2, 3.5)  # far to a side


def sample_cluttered_scene(seed: int) -> SceneSpec:
    """A ``cluttered`` scene from ``seed``: a varied scene plus 1–4 distractors (deterministic).

    Distractors ``0``–``2`` stand beside the path (:func:`_beside_path`), alternating between the
    nominal left and right routes from a random one; distractor 3 stands off the path. One that finds
    no spot beside the path within half the draws stands off it instead.
    """
    scene = sample_varied_scene(seed)
    rng = np.random.default_rng([int(seed), 1])  # the varied part stays the varied preset's scene
    n = int(rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1))
    placed: list[Distractor] = []
    routes = expert_routes(scene)
    nominal = nominal_routes(scene)
    first = int(rng.integers(2))
    for draw in range(_MAX_DRAWS):
        if len(placed) == n:
            break
        k = len(placed)
        shape, size, rgb = _distractor_look(rng)

        def make(x: float, y: float, shape=shape, size=size, rgb=rgb) -> Distractor:
            return Distractor(shape, float(x), float(y), size, rgba_of(rgb))

        if k not in OFF_PATH and draw < _MAX_DRAWS // 2:
            side = (first + sum(j not in OFF_PATH for j in range(k))) % 2
            spot = _beside_path(rng, scene, nominal[side], make(0.0, 0.0).radius, routes,
                                lambda p: distractor_fits(scene, make(*p), placed, routes))
            if spot is None:
                continue
            d = make(*spot)
        else:
            d = make(*_off_path(rng, scene))
        if distractor_fits(scene, d, placed, routes):
            placed.append(d)
    if not placed:
        raise RuntimeError(f"scene seed {seed}: no distractor fits in {_MAX_DRAWS} draws")
    return dataclasses.replace(scene, distractors=tuple(placed))
