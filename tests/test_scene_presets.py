"""Scene presets of the cup task: their ranges, that the expert solves them and that the cup is in view.

The full check (500 rendered start frames, 200 expert scenes per preset) is
``benchmarks/scene_presets.py``; these tests sample fewer scenes to stay fast.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from mobile_vla.sim.evaluate import expert_eval
from mobile_vla.sim.scene import eval_scene_seed, sample_scene, scene_seed
from mobile_vla.sim.scene_varied import (
    DISTRACTOR_CLEARANCE,
    LOW_CONTRAST,
    NOMINAL_VELOCITIES,
    contrast,
    expert_routes,
    in_cup_family,
    route_distance,
    sample_cluttered_scene,
    sample_varied_scene,
)
from mobile_vla.sim.tasks import SCENE_PRESETS, TASKS, resolve
from mobile_vla.sim.visibility import cup_pixels
from mobile_vla.sim.world import ROBOT_RADIUS, World

N = 300


@pytest.fixture(scope="module")
def varied():
    return [sample_varied_scene(scene_seed(1, i)) for i in range(N)]


def _span(values):
    return min(values), max(values)


def test_presets_are_registered_for_the_cup_task_and_varied_is_its_default():
    assert TASKS.get("cup").default_scenes == "varied"
    for name in ("classic", "varied", "cluttered"):
        assert SCENE_PRESETS.get(name).task == "cup"
    assert resolve("cup", None)[2] == "varied"
    assert SCENE_PRESETS.get("classic").sample is sample_scene  # earlier results stay comparable


def test_classic_keeps_its_narrow_ranges():
    scenes = [sample_scene(scene_seed(1, i)) for i in range(N)]
    assert all(not s.distractors and s.num_boxes in (1, 2) for s in scenes)
    assert all(abs(s.obstacle_center[1]) <= 0.15 + 1e-9 and abs(s.start_pose[1]) <= 0.25 for s in scenes)


def test_varied_spans_its_ranges(varied):
    rel = [s.obstacle_center[1] - s.start_pose[1] for s in varied]
    lo, hi = _span(rel)
    assert -0.8 - 1e-9 <= lo < -0.6 and 0.6 < hi <= 0.8 + 1e-9
    lo, hi = _span([s.target_xy[1] - s.obstacle_center[1] for s in varied])
    assert -0.8 <= lo < -0.6 and 0.6 < hi <= 0.8
    lo, hi = _span([s.target_xy[0] - s.obstacle_bounds[1] for s in varied])
    assert 1.2 <= lo < 1.4 and 2.6 < hi <= 3.0
    lo, hi = _span([s.start_pose[1] for s in varied])
    assert -0.5 <= lo < -0.4 and 0.4 < hi <= 0.5
    lo, hi = _span([math.degrees(s.start_pose[2]) for s in varied])
    assert -15 <= lo < -12 and 12 < hi <= 15
    assert {f"{s.num_boxes}box_{s.orientation}" for s in varied} == {
        f"{n}box_{o}" for n in (1, 2, 3) for o in ("hori", "vert")}
    for s in varied:  # hori clusters are wider across the path than deep; vert ones deeper than wide
        x0, x1, y0, y1 = s.obstacle_bounds
        assert ((y1 - y0) > (x1 - x0)) == (s.orientation == "hori")
        assert not any(in_cup_family(b.rgba) for b in s.boxes)
        assert not s.distractors
    low = np.mean([contrast(s.boxes[0].rgba, s.floor_rgba) < LOW_CONTRAST for s in varied])
    assert 0.3 <= low < 0.75  # 30 % drawn low-contrast on purpose, some more by chance; the rest contrast
    assert len({s.floor_texture for s in varied}) == 5


def test_cluttered_adds_distractors_that_are_not_cups_and_leave_both_sides_passable(varied):
    shapes = set()
    for i in range(N):
        s = sample_cluttered_scene(scene_seed(1, i))
        assert s.boxes == varied[i].boxes and s.target_xy == varied[i].target_xy
        assert 1 <= len(s.distractors) <= 4
        routes = expert_routes(s)  # both lanes and the way to the cup stay free
        for d in s.distractors:
            assert not (d.shape == "cylinder" and in_cup_family(d.rgba))
            assert d.height < s.cup_height
            for route in routes:
                assert route_distance((d.x, d.y), route) >= ROBOT_RADIUS + d.radius + DISTRACTOR_CLEARANCE - 1e-9
            shapes.add(d.shape)
    assert shapes == {"box", "sphere", "cylinder"}
    assert DISTRACTOR_CLEARANCE >= 0.25  # the expert passes every distractor with at least a quarter metre to spare


def test_the_nominal_route_is_the_blind_baselines():
    """The cluttered preset puts distractors where a robot driving the mean expert route goes: that route
    must still be the one the blind baseline replays (re-derive NOMINAL_VELOCITIES if the expert changes)."""
    from mobile_vla.sim.baselines import mean_expert_actions

    tables = mean_expert_actions(100, seed=0, scenes="varied")
    for side, table in tables.items():
        nominal = np.array(NOMINAL_VELOCITIES[side])
        assert nominal.shape == (len(table), 2)
        assert np.abs(nominal - table[:, :2]).max() <= 0.006
        assert np.all(table[:, 2] == 0)


@pytest.mark.parametrize("preset", ["varied", "cluttered"])
def test_the_expert_solves_the_preset(preset):
    s = expert_eval(60, seed=4, scenes=preset)
    assert s["scenes"] == preset
    assert s["success_rate"] == 1.0 and s["side_accuracy"] == 1.0 and s["collision_rate"] == 0.0


def test_the_cup_covers_at_least_20_pixels_of_the_start_frame():
    with World(112) as world:
        for preset in ("varied", "cluttered"):
            sample = SCENE_PRESETS.get(preset).sample
            for i in range(25):
                scene = sample(eval_scene_seed(2, i))
                assert cup_pixels(world, scene).sum() >= 20, (preset, scene.seed)


def test_a_distractor_is_an_obstacle():
    scene = sample_cluttered_scene(scene_seed(1, 0))
    d = scene.distractors[0]
    import dataclasses

    with World(32) as world:
        world.reset(dataclasses.replace(scene, start_pose=(d.x - d.radius - ROBOT_RADIUS - 0.3, d.y, 0.0)))
        assert any(world.step(np.array([1.0, 0.0, 0.0])) for _ in range(6))


def test_classic_scenes_are_the_ones_earlier_results_were_measured_on():
    """The classic sampler's output for 50 seeds, hashed with the code before the presets existed."""
    import dataclasses
    import hashlib

    scenes = [dataclasses.astuple(sample_scene(scene_seed(0, i)))[:-1] for i in range(50)]  # minus distractors
    assert hashlib.sha256(repr(scenes).encode()).hexdigest() == (
        "cb1ebf31d86b0f4a7163975a24f1e980d0a7d9a243120710f1973568b54f2a3d")


def test_collected_episodes_record_their_preset_and_three_box_names(tmp_path):
    from mobile_vla.data.episode import list_episodes, parse_episode_name, read_episode
    from mobile_vla.sim.collect import CollectConfig, collect

    index = next(i for i in range(50) if sample_varied_scene(scene_seed(0, i)).num_boxes == 3)
    collect(CollectConfig(tmp_path, episodes=2 * (index + 1), seed=0, image_size=32, scenes="cluttered",
                          noise_fraction=0.0), progress=False)
    paths = list_episodes(tmp_path)
    assert len(paths) == 2 * (index + 1)
    for path in paths:
        assert read_episode(path, load_images=False).attrs["scenes"] == "cluttered"
    three = [p for p in paths if "_3box_" in p.name]
    assert three and parse_episode_name(three[0].name).boxes == 3


def test_demo_scenes_names_a_preset_and_num_scenes_counts_them():
    from mobile_vla.demo import load_demo_config
    from mobile_vla.errors import ConfigError

    cfg = load_demo_config(["num_scenes=12", "scenes=cluttered"])
    assert cfg.num_scenes == 12 and cfg.scenes == "cluttered"
    assert load_demo_config([]).scenes is None  # the cup task's default preset
    with pytest.raises(ConfigError, match="num_scenes=40"):
        load_demo_config(["scenes=40"])


def test_varied_scenes_are_the_ones_policies_are_trained_on():
    """The varied sampler's output for 50 collection and 50 evaluation seeds, hashed before the cluttered
    preset's distractors were retuned: changing ``cluttered`` must never change ``varied``."""
    import dataclasses
    import hashlib

    scenes = [dataclasses.astuple(sample_varied_scene(scene_seed(0, i))) for i in range(50)]
    scenes += [dataclasses.astuple(sample_varied_scene(eval_scene_seed(0, i))) for i in range(50)]
    assert hashlib.sha256(repr(scenes).encode()).hexdigest() == (
        "193a7293661bea8f577b3a0895c40a59b16651ea2ea69bcc3fcbfdf96473321a")
