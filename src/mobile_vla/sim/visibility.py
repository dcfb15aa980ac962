"""How much of a frame the cup takes: the pixels that change when the cup is moved out of view."""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_vla.sim.scene import SceneSpec
from mobile_vla.sim.world import World

_AWAY = (60.0, 30.0)  # far behind the robot's view
_CHANGED = 30  # summed |RGB difference| above which a pixel counts as changed by the cup


def cup_pixels(world: World, scene: SceneSpec) -> np.ndarray:
    """``(S, S)`` bool: the pixels of the robot's first frame in ``scene`` that its cup changes.

    Renders the start frame twice (with and without the cup), so occlusion by boxes and
    distractors and the field of view are all accounted for; leaves ``world`` reset to ``scene``.
    """
    world.reset(dataclasses.replace(scene, target_xy=_AWAY))
    background = world.render().astype(np.int32)
    world.reset(scene)
    return np.abs(world.render().astype(np.int32) - background).sum(-1) > _CHANGED
