"""Closed-loop evaluation: the policy drives the simulated robot, per instruction side.

The policy is reached through the same streaming API a robot uses (``new_session`` /
``step``), in-process (:class:`mobile_vla.Policy`) or over the network
(:class:`mobile_vla.serve.client.RemotePolicy`); the shared chunk executor turns chunks
into commands as on the robot. Scenes come from the simulator's
evaluation seed stream, disjoint from every collection stream.

The same loop scores the references a policy's figure stands next to (``baseline``): the
image-blind replay of the mean expert action (``blind``) and the expert itself (``expert``);
``blank_frames`` shows the policy one constant image instead of every frame
(:mod:`mobile_vla.sim.baselines`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from mobile_vla.policy.executor import DEFAULT_DECAY, DEFAULT_STRATEGY
from mobile_vla.vocab.instructions import (
    FAMILIES,
    NO_SIDE,
    SIDES,
    TRAINING,
    family_templates,
    other_side,
    sample_instruction,
)

if TYPE_CHECKING:  # the simulator loads on use
    from mobile_vla.sim.expert import ExpertConfig

log = logging.getLogger(__name__)

#: Which instructions each scene is run with, relative to the side the scene suggests (more room):
#: both sides, only the suggested one, or only the opposite one (where scene and instruction disagree).
INSTRUCTION_SIDES = ("both", "suggested", "opposite")


def instruction_sides(scene, instruction_side: str) -> tuple[str, ...]:
    """The instructed sides to run ``scene`` with (see :data:`INSTRUCTION_SIDES`)."""
    from mobile_vla.sim.suggested import suggested_side

    if instruction_side == "both":
        return SIDES
    if instruction_side not in INSTRUCTION_SIDES:
        raise ValueError(f"instruction_side must be one of {INSTRUCTION_SIDES}, got {instruction_side!r}")
    suggested = suggested_side(scene)
    return (suggested,) if instruction_side == "suggested" else (other_side(suggested),)


def evaluate_closed_loop(
    policy,
    episodes: int,
    seed: int = 0,
    strategy: str = DEFAULT_STRATEGY,
    image_size: int | None = None,
    heldout_phrasings: bool = False,
    video_dir: str | Path | None = None,
    videos: int = 4,
    progress: bool = True,
    task: str | None = None,
    scenes: str | None = None,
    baseline: str | None = None,
    blank_frames: bool = False,
    instructions: str | None = None,
    instruction_side: str = "both",
    decay: float = DEFAULT_DECAY,
    expert: ExpertConfig | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` closed-loop episodes (scenes paired: each scene once per side).

    ``task``/``scenes``: the simulator task and scene preset (defaults: the cup task, its default preset).
    ``baseline``: ``None`` drives with ``policy``; ``"blind"`` or ``"expert"`` drive with that
    reference instead (``policy`` is then ignored and may be ``None``). ``blank_frames``: the
    policy sees one constant grey image instead of every frame.
    ``instructions``: which sentences the robot is given — ``training`` (default: the training
    templates of every family), a family's held-out part (``paraphrase``, ``relational``,
    ``negated``, ``korean``) or ``no-side`` (no side named: both episodes of a scene get one, and
    the report says which side the robot took). ``heldout_phrasings`` is ``paraphrase``.
    ``instruction_side``: ``both`` (each scene under both instructions), ``suggested`` or ``opposite``
    (each scene once, instructed to pass on the side the scene suggests / the other side).
    ``decay``: the ``ensemble`` strategy's weight decay per step of a chunk's age.
    ``expert``: how the baselines' expert drives (``None``: ``ExpertConfig()``); the blind replay
    averages its actions. Match the recipe the policy was trained on.

    Returns:
        ``{"overall": {...}, "left": {...}, "right": {...}, "records": [...]}`` where each
        summary is :func:`mobile_vla.sim.evaluate.summarize` and ``records`` holds per-episode
        trajectories for plotting; ``instructions`` names the set; ``sides_taken`` (no-side: the
        fraction of episodes passing left / right); ``confusion`` (scenes holding another task's
        objects: the fraction of episodes that reached one, else ``None``); ``by_goal_side``
        (:func:`by_goal_side`); ``failure_phases`` (:func:`mobile_vla.eval.failures.failure_phases`:
        per outcome, the share of episodes that failed on the approach, beside or after the
        cluster). Each record says on which side of the cluster its goal lay
        (``goal_side``, :func:`mobile_vla.sim.suggested.goal_side`).
    """
    from mobile_vla.eval.failures import failure_phases
    from mobile_vla.eval.rollout_video import write_rollout_video
    from mobile_vla.policy.controller import PolicyController
    from mobile_vla.sim.baselines import BASELINES, BlankFrames, BlindReplay, mean_expert_actions
    from mobile_vla.sim.basket import other_task_reached
    from mobile_vla.sim.evaluate import summarize
    from mobile_vla.sim.expert import ExpertConfig
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.suggested import goal_side
    from mobile_vla.sim.tasks import resolve
    from mobile_vla.sim.world import World

    task, spec, scenes, preset = resolve(task, scenes)
    expert = expert or ExpertConfig()
    instructions = instructions or ("paraphrase" if heldout_phrasings else TRAINING)
    family_templates(instructions, spec.target)  # an unknown name fails before any rollout

    if baseline is None:
        size = image_size or int(policy.metadata["image_size"])
        controller = PolicyController(policy, strategy, decay)  # the same controller the robot client runs
    elif baseline == "blind":
        size = image_size or 112
        controller = BlindReplay(mean_expert_actions(seed=seed, task=task, scenes=scenes, expert=expert),
                                 no_side_route=expert.no_side_route)
    elif baseline == "expert":
        size, controller = image_size or 112, None  # run_episode drives with the task's expert
    else:
        raise ValueError(f"baseline must be one of {BASELINES} or None, got {baseline!r}")
    if blank_frames:
        if baseline is not None:
            raise ValueError("blank_frames replaces a policy's frames; the baselines do not look at them")
        controller = BlankFrames(controller)
    rng = np.random.default_rng([seed, 7])  # phrasing choice; independent of the scene stream
    results, slots, confused = [], [], []
    records: list[dict[str, Any]] = []
    video_dir = Path(video_dir) if video_dir else None
    per_scene = 2 if instruction_side == "both" else 1
    num_scenes = (episodes + per_scene - 1) // per_scene
    bar = tqdm(total=num_scenes * per_scene, desc="eval-sim", unit="ep", disable=not progress)
    with World(image_size=size) as world:
        for i in range(num_scenes):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in instruction_sides(scene, instruction_side):
                if len(results) >= episodes:
                    break
                instruction = sample_instruction(None if instructions == NO_SIDE else side, rng, target=spec.target,
                                                 family=instructions)
                want_video = video_dir is not None and len(results) < videos
                result = run_episode(world, scene, instruction, controller, beta=0.0, expert=expert,
                                     render=want_video, task=spec)
                results.append(result)
                slots.append(side)
                confused.append(other_task_reached(scene, result.poses, spec.target))
                named = None if instructions == NO_SIDE else side
                records.append({**result.to_record(scene), "confused": confused[-1],
                                "instruction_side": instruction_side,
                                "goal_side": goal_side(scene, spec.goal(scene, named))})
                if want_video:
                    write_rollout_video(result.frames, records[-1], video_dir / f"rollout_{len(results) - 1:02d}_{side}.mp4")
                bar.update(1)
                bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    bar.close()
    report: dict[str, Any] = {"overall": summarize(results)}
    # Per instructed side (no-side episodes by the slot of their scene pair); with one instruction
    # per scene a small run may hold no episode of a side.
    for side in SIDES:
        mine = [r for r, slot in zip(results, slots) if slot == side]
        report[side] = summarize(mine) if mine else None
    report["controller"] = baseline or "policy"
    report["blank_frames"] = bool(blank_frames)
    report["instructions"] = instructions
    if instructions == NO_SIDE:
        report["sides_taken"] = {s: float(np.mean([r.passed_side == s for r in results])) for s in SIDES}
    report["by_goal_side"] = by_goal_side(results, records)
    report["failure_phases"] = failure_phases(records)  # where the failed episodes ended
    judged = [c for c in confused if c is not None]
    report["confusion"] = float(np.mean(judged)) if judged else None
    report["expert"] = dataclasses.asdict(expert) if baseline is not None else None  # the baselines' lane
    report["strategy"] = strategy if baseline is None else None
    report["ensemble_decay"] = decay if baseline is None and strategy == "ensemble" else None
    report["seed"] = seed
    report["task"] = task
    report["scenes"] = scenes
    report["instruction_side"] = instruction_side
    # The evaluation scenes, in order: two runs compare on the same scenes iff these lists match.
    report["scene_seeds"] = list(dict.fromkeys(int(r["scene_seed"]) for r in records))
    report["records"] = records
    return report


def by_goal_side(results, records: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Summaries of the episodes whose goal lay on the ``instructed`` side of the obstacle cluster
    and of those where it lay on the ``other`` side (the route must cross behind the cluster to
    reach it); ``None`` for a group without episodes. Episodes that name no side, or whose
    scene has no boxes, are in neither group. In the cup task with ``instruction_side`` ``both``
    each scene gives one episode to each group; in the basket task the side word names the goal,
    so nearly every episode is ``instructed``."""
    from mobile_vla.sim.evaluate import summarize

    groups: dict[str, list] = {"instructed": [], "other": []}
    for result, record in zip(results, records):
        goal, side = record.get("goal_side"), result.side
        if goal is not None and side is not None:
            groups["instructed" if goal == side else "other"].append(result)
    return {name: summarize(members) if members else None for name, members in groups.items()}


def success_by_family(policy, episodes: int, seed: int = 0, strategy: str = DEFAULT_STRATEGY, task: str | None = None,
                      scenes: str | None = None, families=FAMILIES, progress: bool = False,
                      decay: float = DEFAULT_DECAY) -> tuple[dict, dict]:
    """Each family's held-out part in closed loop on the same scenes.

    Returns ``({family: {"left": rate, "right": rate}}, {family: report})`` (reports without
    records), the rate being success **on the instructed side** (reached the goal having passed on
    the side the sentence means: reaching the cup the wrong way round does not count).
    """
    table, reports = {}, {}
    for family in families:
        report = evaluate_closed_loop(policy, episodes, seed, strategy, task=task, scenes=scenes,
                                      instructions=family, progress=progress, decay=decay)
        report.pop("records")
        reports[family] = report
        table[family] = {side: report[side]["success_on_side_rate"] for side in SIDES}
    return table, reports

