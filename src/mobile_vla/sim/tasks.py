"""Simulator tasks and scene presets, the two registries scenes are drawn through.

A *task* (:class:`SimTask`, in :data:`TASKS`) is what the robot must do: which object the
instructions name, how the expert drives, and the per-episode judge (success, collision,
passed side). A *scene preset* (:class:`ScenePreset`, in :data:`SCENE_PRESETS`) is a named
distribution of one task's scenes: a seed → :class:`SceneSpec` function. Tasks and presets are
separate choices (``--task``, ``--scenes``); a preset says which task it belongs to.

Registered here: the ``cup`` task (pass the obstacle cluster on the instructed side and reach
the cup) with three presets: ``classic`` (:func:`mobile_vla.sim.scene.sample_scene`, the
original narrow distribution, kept so earlier results stay comparable), ``varied`` (the default:
:func:`mobile_vla.sim.scene_varied.sample_varied_scene`) and ``cluttered`` (varied plus
distractors: :func:`mobile_vla.sim.scene_varied.sample_cluttered_scene`); and the ``basket`` task
(reach the instructed one of two baskets, :mod:`mobile_vla.sim.basket`) with its ``baskets``
preset; ``mixed`` (cup task) and ``basket-mixed`` (basket task) show a box, the cup and both
baskets, so that only the sentence tells the tasks apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from mobile_vla.errors import MobileVLAError
from mobile_vla.registry import Registry
from mobile_vla.sim import basket
from mobile_vla.sim.expert import ExpertConfig, expert_action
from mobile_vla.sim.scene import SceneSpec, sample_scene
from mobile_vla.sim.scene_varied import sample_cluttered_scene, sample_varied_scene
from mobile_vla.sim.task import Task
from mobile_vla.sim.world import World

#: ``(scene, pose (3,), side, expert config) -> (3,)`` robot-frame command.
ExpertFn = Callable[[SceneSpec, np.ndarray, str, ExpertConfig], np.ndarray]
#: ``(world reset to a scene, success radius m, max steps, side=instructed side or None) -> Task``.
JudgeFn = Callable[[World, float, int], Task]
#: ``(scene, instructed side or None) -> (x, y)`` of the object the instruction names.
GoalFn = Callable[[SceneSpec, "str | None"], "tuple[float, float]"]


def scene_target(scene: SceneSpec, side: str | None) -> tuple[float, float]:
    return scene.target_xy


@dataclasses.dataclass(frozen=True)
class SimTask:
    target: str  # the object instructions name, e.g. "cup"
    default_scenes: str  # the preset used when none is named
    expert: ExpertFn
    judge: JudgeFn
    description: str = ""
    goal: GoalFn = scene_target  # where the named object is (episode attributes, scene labels)


@dataclasses.dataclass(frozen=True)
class ScenePreset:
    task: str  # the task whose scenes these are
    sample: Callable[[int], SceneSpec]  # scene seed -> scene (deterministic)
    description: str = ""


TASKS: Registry[SimTask] = Registry("simulator task")
SCENE_PRESETS: Registry[ScenePreset] = Registry("scene preset")

DEFAULT_TASK = "cup"

TASKS.register("cup", SimTask(
    target="cup", default_scenes="varied", expert=expert_action, judge=Task,
    description="pass the obstacle cluster on the instructed side and reach the cup"))
SCENE_PRESETS.register("classic", ScenePreset(
    task="cup", sample=sample_scene,
    description="1-2 boxes 2.0-2.5 m ahead within ±0.15 m, the cup 2.2-2.6 m behind them"))
SCENE_PRESETS.register("varied", ScenePreset(
    task="cup", sample=sample_varied_scene,
    description="1-3 boxes within ±0.8 m of the start's line, the cup ±0.8 m off them and 1.2-3.0 m behind, "
                "start ±0.5 m and ±15°, wide and low-contrast palettes"))
SCENE_PRESETS.register("cluttered", ScenePreset(
    task="cup", sample=sample_cluttered_scene,
    description="varied plus 1-4 distractors (other shapes; cylinders never in the cup's colours)"))

TASKS.register("basket", SimTask(
    target="basket", default_scenes="baskets", expert=basket.basket_expert, judge=basket.BasketJudge,
    goal=basket.basket_goal, description="reach the instructed one of two gray baskets behind the obstacle"))
SCENE_PRESETS.register("baskets", ScenePreset(
    task="basket", sample=basket.sample_basket_scene,
    description="the classic scene without the cup, two gray baskets 1.2-1.8 m behind it, 1.5-1.9 m to each side"))
SCENE_PRESETS.register("mixed", ScenePreset(
    task="cup", sample=basket.sample_mixed_scene, description="the classic scene plus the two baskets"))
SCENE_PRESETS.register("basket-mixed", ScenePreset(
    task="basket", sample=basket.sample_mixed_scene, description="the baskets scene with the cup in view"))


def resolve(task: str | None = None, scenes: str | None = None) -> tuple[str, SimTask, str, ScenePreset]:
    """``(task name, task, preset name, preset)``; ``None`` picks the default task / the task's default preset."""
    task = task or DEFAULT_TASK
    spec = TASKS.get(task)
    scenes = scenes or spec.default_scenes
    preset = SCENE_PRESETS.get(scenes)
    if preset.task != task:
        raise MobileVLAError(f"scene preset {scenes!r} belongs to task {preset.task!r}, not {task!r}")
    return task, spec, scenes, preset


def mixed_preset(task: str) -> str:
    """The scene preset of ``task`` that holds every task's objects (a box, the cup, both baskets)."""
    return "mixed" if TASKS.get(task).target == "cup" else f"{task}-mixed"
