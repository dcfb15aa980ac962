"""Simulator tasks and scene presets, the two registries scenes are drawn through.

A *task* (:class:`SimTask`, in :data:`TASKS`) is what the robot must do: which object the
instructions name, how the expert drives, and the per-episode judge (success, collision,
passed side). A *scene preset* (:class:`ScenePreset`, in :data:`SCENE_PRESETS`) is a named
distribution of one task's scenes: a seed → :class:`SceneSpec` function. Tasks and presets are
separate choices (``--task``, ``--scenes``); a preset says which task it belongs to.

Registered here: the ``cup`` task (pass the obstacle cluster on the instructed side and reach
the cup) with its ``classic`` preset (:func:`mobile_vla.sim.scene.sample_scene`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from mobile_vla.errors import MobileVLAError
from mobile_vla.registry import Registry
from mobile_vla.sim.expert import ExpertConfig, expert_action
from mobile_vla.sim.scene import SceneSpec, sample_scene
from mobile_vla.sim.task import Task
from mobile_vla.sim.world import World

#: ``(scene, pose (3,), side, expert config) -> (3,)`` robot-frame command.
ExpertFn = Callable[[SceneSpec, np.ndarray, str, ExpertConfig], np.ndarray]
#: ``(world reset to a scene, success radius m, max steps) -> Task``.
JudgeFn = Callable[[World, float, int], Task]


@dataclasses.dataclass(frozen=True)
class SimTask:
    target: str  # the object instructions name, e.g. "cup"
    default_scenes: str  # the preset used when none is named
    expert: ExpertFn
    judge: JudgeFn
    description: str = ""


@dataclasses.dataclass(frozen=True)
class ScenePreset:
    task: str  # the task whose scenes these are
    sample: Callable[[int], SceneSpec]  # scene seed -> scene (deterministic)
    description: str = ""


TASKS: Registry[SimTask] = Registry("simulator task")
SCENE_PRESETS: Registry[ScenePreset] = Registry("scene preset")

DEFAULT_TASK = "cup"

TASKS.register("cup", SimTask(
    target="cup", default_scenes="classic", expert=expert_action, judge=Task,
    description="pass the obstacle cluster on the instructed side and reach the cup"))
SCENE_PRESETS.register("classic", ScenePreset(
    task="cup", sample=sample_scene,
    description="1-2 boxes 2.0-2.5 m ahead within ±0.15 m, the cup 2.2-2.6 m behind them"))


def resolve(task: str | None = None, scenes: str | None = None) -> tuple[str, SimTask, str, ScenePreset]:
    """``(task name, task, preset name, preset)``; ``None`` picks the default task / the task's default preset."""
    task = task or DEFAULT_TASK
    spec = TASKS.get(task)
    scenes = scenes or spec.default_scenes
    preset = SCENE_PRESETS.get(scenes)
    if preset.task != task:
        raise MobileVLAError(f"scene preset {scenes!r} belongs to task {preset.task!r}, not {task!r}")
    return task, spec, scenes, preset
