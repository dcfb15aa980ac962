"""Is the cup in the robot's view? Pixels it changes in a frame, and the camera's geometry.

:func:`cup_pixels` renders (occlusion and the field of view both count); :func:`cup_in_view`
projects the cup into the camera without rendering (the field of view only, no occlusion), cheap
enough to ask at every step of many routes, e.g. where an expert's route takes the cup out of
view — the moments a policy without memory must act on what it saw earlier.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mobile_vla.sim.scene import SceneSpec
from mobile_vla.sim.world import CAMERA_FORWARD, CAMERA_SENSOR, World

_AWAY = (60.0, 30.0)  # far behind the robot's view
_CHANGED = 30  # summed |RGB difference| above which a pixel counts as changed by the cup
_AXIS_SAMPLES = 5  # points along the cup's axis, base to rim


def cup_pixels(world: World, scene: SceneSpec) -> np.ndarray:
    """``(S, S)`` bool: the pixels of the robot's first frame in ``scene`` that its cup changes.

    Renders the start frame twice (with and without the cup), so occlusion by boxes and
    distractors and the field of view are all accounted for; leaves ``world`` reset to ``scene``.
    """
    world.reset(dataclasses.replace(scene, target_xy=_AWAY))
    background = world.render().astype(np.int32)
    world.reset(scene)
    return np.abs(world.render().astype(np.int32) - background).sum(-1) > _CHANGED


def cup_in_view(scene: SceneSpec, pose) -> bool:
    """Whether any part of the cup's axis (widened by its radius) projects inside the frame.

    ``pose`` ``(x, y, yaw)``: the robot's pose. The camera sits ``CAMERA_FORWARD`` ahead of the
    robot's centre at ``scene.camera_height``, looks along the robot's heading pitched down by
    ``scene.camera_pitch``, with ``scene.camera_fovy`` vertically and the 16:9 sensor's
    horizontal field (as :class:`~mobile_vla.sim.world.World` sets it up).
    """
    x, y, yaw = (float(v) for v in pose[:3])
    dx, dy = scene.target_xy[0] - x, scene.target_xy[1] - y
    fwd = math.cos(yaw) * dx + math.sin(yaw) * dy - CAMERA_FORWARD  # robot frame, from the camera
    left = -math.sin(yaw) * dx + math.cos(yaw) * dy
    p = scene.camera_pitch
    tan_v = math.tan(math.radians(scene.camera_fovy) / 2)
    tan_h = tan_v * CAMERA_SENSOR[0] / CAMERA_SENSOR[1]
    for z in np.linspace(0.0, scene.cup_height, _AXIS_SAMPLES):
        up = z - scene.camera_height
        depth = fwd * math.cos(p) - up * math.sin(p)
        if depth <= 0:
            continue
        vertical = fwd * math.sin(p) + up * math.cos(p)
        if abs(left) - scene.cup_radius <= tan_h * depth and abs(vertical) <= tan_v * depth:
            return True
    return False


#: Closer than this (m) the robot is arriving: the cup leaving the frame then is not a loss of sight.
ARRIVING = 0.7


def steps_out_of_view(scene: SceneSpec, poses: np.ndarray, min_distance: float = ARRIVING) -> np.ndarray:
    """``(T,)`` bool: the poses ``(T, 3)`` of a route from which the cup, farther than
    ``min_distance``, is out of view."""
    poses = np.asarray(poses, np.float64).reshape(-1, 3)
    far = np.hypot(scene.target_xy[0] - poses[:, 0], scene.target_xy[1] - poses[:, 1]) > min_distance
    return np.array([f and not cup_in_view(scene, pose) for f, pose in zip(far, poses)], bool)


def route_view_summary(routes) -> dict:
    """Where routes lose the cup: ``routes`` is ``[(scene, poses (T, 3), outcome), ...]``.

    Returns, per outcome (e.g. ``success``/``timeout``) and over all: ``episodes``,
    ``lost_cup`` (share of episodes with the cup out of view at some step, farther than
    :data:`ARRIVING`), ``steps_out``
    (mean steps out of view per episode) and ``out_by_phase`` (share of the out-of-view steps
    spent approaching, beside or after the cluster, :data:`mobile_vla.vocab.scene.PHASES`);
    ``drifted_away``: of the episodes that lost the cup, the share that end farther from it
    sideways than where they lost it (the robot moved away from what it could no longer see).
    """
    from mobile_vla.vocab.scene import PHASES, cluster_phase

    groups: dict[str, list[tuple[np.ndarray, np.ndarray, bool]]] = {}
    for scene, poses, outcome in routes:
        poses = np.asarray(poses, np.float64).reshape(-1, 3)
        out = steps_out_of_view(scene, poses)
        x0, x1 = scene.obstacle_bounds[:2]
        phase = cluster_phase(x0 - poses[:, 0], x1 - poses[:, 0])  # yaw ≈ 0: faces along x
        sideways = np.abs(poses[:, 1] - scene.target_xy[1])
        drifted = bool(out.any() and sideways[-1] > sideways[int(np.argmax(out))])
        for key in (outcome, "all"):
            groups.setdefault(key, []).append((out, phase, drifted))

    def summary(items) -> dict:
        phases = np.concatenate([p[o] for o, p, _ in items]) if items else np.zeros(0, int)
        lost = [d for o, _, d in items if o.any()]
        return {"episodes": len(items), "lost_cup": float(np.mean([o.any() for o, _, _ in items])),
                "steps_out": float(np.mean([o.sum() for o, _, _ in items])),
                "drifted_away": float(np.mean(lost)) if lost else 0.0,
                "out_by_phase": {name: float(np.mean(phases == i)) if len(phases) else 0.0
                                 for i, name in enumerate(PHASES)}}

    return {key: summary(items) for key, items in sorted(groups.items())}
