"""Baselines beside closed-loop figures: the blind replay, the expert, blank frames."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from mobile_vla.cli import main
from mobile_vla.sim.baselines import BlankFrames, BlindReplay, mean_expert_actions
from mobile_vla.sim.rollout import run_episode
from mobile_vla.sim.scene import baseline_scene_seed, eval_scene_seed, scene_seed
from mobile_vla.sim.tasks import SCENE_PRESETS
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import canonical_instruction


def test_baseline_scenes_are_disjoint_from_collection_and_evaluation():
    base = {baseline_scene_seed(0, i) for i in range(300)}
    assert not base & {eval_scene_seed(0, i) for i in range(300)}
    assert not base & {scene_seed(0, i) for i in range(300)}


def test_mean_expert_actions_average_the_experts_steps_and_end_at_the_longest():
    tables = mean_expert_actions(episodes=6, seed=2, scenes="varied")
    preset = SCENE_PRESETS.get("varied")
    with World(32) as world:
        runs = [run_episode(world, preset.sample(baseline_scene_seed(2, i)), canonical_instruction("left"),
                            render=False).executed for i in range(6)]
    longest = max(len(r) for r in runs)
    assert tables["left"].shape == (longest, 3)
    np.testing.assert_allclose(tables["left"][0], np.mean([r[0] for r in runs], 0), atol=1e-6)
    last = [r[-1] for r in runs if len(r) == longest]
    np.testing.assert_allclose(tables["left"][-1], np.mean(last, 0), atol=1e-6)
    assert tables["left"][0, 1] != pytest.approx(tables["right"][0, 1])  # the sides differ


def test_blind_replay_ignores_frames_and_stops_after_the_table():
    table = np.array([[0.5, 0.2, 0.0], [0.4, -0.1, 0.0]], np.float32)
    blind = BlindReplay({"left": table, "right": -table})
    blind.reset(canonical_instruction("right"))
    a = blind.act(np.zeros((8, 8, 3), np.uint8))
    b = blind.act(np.full((8, 8, 3), 255, np.uint8))
    np.testing.assert_array_equal(np.stack([a, b]), -table)
    assert not blind.act(np.zeros((8, 8, 3), np.uint8)).any()
    with pytest.raises(ValueError, match="names a side"):
        blind.reset("Reach the cup")
    convention = BlindReplay({"left": table, "right": -table}, no_side_route="right")
    convention.reset("Reach the cup")  # a fixed convention is replayed like its side
    np.testing.assert_array_equal(convention.act(np.zeros((8, 8, 3), np.uint8)), -table[0])


def test_blind_replay_episodes_render_no_frame(monkeypatch):
    scene = SCENE_PRESETS.get("varied").sample(eval_scene_seed(0, 0))
    tables = mean_expert_actions(episodes=2, scenes="varied")
    with World() as world:
        looked = run_episode(world, scene, canonical_instruction("left"), BlindReplay(tables), beta=0.0, render=True)
        monkeypatch.setattr(World, "render", lambda self: pytest.fail("rendered a frame nobody looks at"))
        blind = run_episode(world, scene, canonical_instruction("left"), BlindReplay(tables), beta=0.0, render=False)
    np.testing.assert_array_equal(blind.poses, looked.poses)  # the same drive: it never looked


def test_blank_frames_show_the_controller_one_constant_image():
    seen = []

    class Recorder:
        def reset(self, instruction):
            pass

        def act(self, frame):
            seen.append(frame.copy())
            return np.zeros(3, np.float32)

    blank = BlankFrames(Recorder())
    blank.reset("x")
    blank.act(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    assert seen[0].shape == (8, 8, 3) and (seen[0] == 128).all()


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_sim_runs_the_baselines_with_the_policy_report(tmp_path, capsys):
    expert = _json(capsys, ["eval-sim", "--baseline", "expert", "--scenes", "cluttered", "--episodes", "4",
                            "--seed", "3", "--json", "--out", str(tmp_path / "e")])
    assert expert["controller"] == "expert" and expert["scenes"] == "cluttered"
    assert expert["left"]["success_rate"] == 1.0 and expert["right"]["side_accuracy"] == 1.0
    assert len(expert["scene_seeds"]) == 2
    blind = _json(capsys, ["eval-sim", "--baseline", "blind", "--scenes", "cluttered", "--episodes", "4",
                           "--seed", "3", "--json"])
    assert blind["controller"] == "blind" and blind["scene_seeds"] == expert["scene_seeds"]
    assert set(blind) >= {"overall", "left", "right", "task", "scenes", "seed"}
    saved = json.loads((tmp_path / "e" / "report.json").read_text())
    assert saved["overall"] == expert["overall"]
    assert main(["eval-sim", "--baseline", "blind", "--blank-frames", "--episodes", "2"]) != 0
    assert "--blank-frames replaces a policy's frames" in capsys.readouterr().err


def test_eval_sim_baselines_drive_the_lane_they_are_given(capsys):
    """--clearance / --front-margin set the expert the baselines use (the recipe's, e.g. the demo's)."""
    args = ["eval-sim", "--baseline", "expert", "--episodes", "4", "--seed", "5", "--json"]
    default = _json(capsys, args)
    wide = _json(capsys, [*args, "--clearance", "0.9", "--front-margin", "0.9"])
    assert default["expert"]["clearance"] == 0.6 and wide["expert"]["clearance"] == 0.9
    assert wide["overall"]["success_rate"] == 1.0
    assert wide["overall"]["mean_steps"] > default["overall"]["mean_steps"]  # a wider lane is a longer drive
    blind = _json(capsys, ["eval-sim", "--baseline", "blind", "--episodes", "2", "--json", "--clearance", "0.9"])
    assert blind["expert"]["clearance"] == 0.9
    assert main(["eval-sim", "--checkpoint", "ckpt", "--clearance", "0.9"]) != 0
    assert "use them with --baseline" in capsys.readouterr().err
    # --no-side-route is also a policy's convention for no-side requests; a server applies its own.
    assert main(["eval-sim", "--server", "ws://127.0.0.1:9", "--no-side-route", "right"]) != 0
    assert "the server applies it" in capsys.readouterr().err
