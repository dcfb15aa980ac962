"""The robot's own data: one-sided episodes, several weighted sources, diagnose without paired labels."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_fixtures import write_real_episode, write_sim_pair
from mobile_vla.cli import main
from mobile_vla.data.sources import DataSource, parse_sources, window_weights
from mobile_vla.errors import ConfigError
from mobile_vla.eval.grounding import instruction_metrics, lateral_velocity_by_side, mirror_consistency_error
from mobile_vla.sim.scene import sample_scene, scene_seed
from mobile_vla.sim.suggested import room_by_side, suggested_side

TINY = [
    "model.backbone.text_dim=32", "model.backbone.text_layers=1", "model.backbone.text_heads=2",
    "model.backbone.vision_dim=32", "model.backbone.vision_layers=1", "model.backbone.vision_heads=2",
    "model.backbone.latent_query_num=4", "model.backbone.image_size=56", "model.head.window_size=1",
    "model.head.fwd_pred_next_n=3", "model.head.lstm_hidden=16", "model.head.mlp_hidden=16", "data.batch_size=4",
    "trainer.val_check_interval=4", "trainer.log_every_n_steps=1", "trainer.checkpoint_every_n_steps=0",
    "data.val_fraction=0.34",
]
ROBOT_NAME = re.compile(r"^episode_\d{8}_\d{6}_[123]box_(hori|vert)_(left|right)_core_(close|medium|far)\.h5$")
ROBOT_ATTRS = {"episode_name", "total_duration", "num_frames", "action_chunk_size", "obstacle_layout_type",
               "time_period", "collection_datetime", "collection_hour", "collection_minute"}


# -- the side a scene suggests ---------------------------------------------------------
def test_the_suggested_side_has_more_room_and_both_sides_occur():
    sides = []
    for i in range(40):
        scene = sample_scene(scene_seed(0, i))
        room = room_by_side(scene)
        side = suggested_side(scene)
        assert room[side] >= room["right" if side == "left" else "left"]
        # the cluster stands on the other side of the start line
        offset = scene.obstacle_center[1] - scene.start_pose[1]
        assert (offset <= 0) == (side == "left")
        sides.append(side)
    assert 10 <= sides.count("left") <= 30


def test_unpaired_sides_suggested_random_and_paired():
    from mobile_vla.sim.collect import CollectConfig

    scenes = [sample_scene(scene_seed(0, i)) for i in range(30)]
    suggested = CollectConfig(out=Path("x"), episodes=30, unpaired="suggested")
    rand = CollectConfig(out=Path("x"), episodes=30, unpaired="random")
    assert suggested.num_scenes == 30 and CollectConfig(out=Path("x"), episodes=30).num_scenes == 15
    assert [suggested.sides(s) for s in scenes] == [(suggested_side(s),) for s in scenes]
    drawn = [rand.sides(s) for s in scenes]
    assert drawn == [rand.sides(s) for s in scenes]  # deterministic per scene
    assert {d[0] for d in drawn} == {"left", "right"}
    assert any(d[0] != suggested_side(s) for d, s in zip(drawn, scenes))
    assert CollectConfig(out=Path("x"), episodes=2).sides(scenes[0]) == ("left", "right")
    with pytest.raises(ValueError, match="unpaired"):
        CollectConfig(out=Path("x"), episodes=2, unpaired="sometimes")


def test_sim_collect_unpaired_writes_the_robots_layout(tmp_path, capsys):
    from mobile_vla.data.formats import read_episode

    out = tmp_path / "robot"
    assert main(["sim", "collect", "--unpaired", "--out", str(out), "--episodes", "3", "--image-size", "32",
                 "--scenes", "classic", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == summary["written"] == 3
    files = sorted(out.glob("*.h5"))
    assert len(files) == 3
    for i, path in enumerate(files):
        assert ROBOT_NAME.match(path.name), path.name
        scene = sample_scene(scene_seed(0, i))
        assert f"_{suggested_side(scene)}_core_" in path.name
        with h5py.File(path) as f:
            assert set(f) == {"images", "actions", "action_event_types", "language_instruction"}
            assert set(f.attrs) == ROBOT_ATTRS
        ep = read_episode(path)
        assert ep.counterfactual_actions is None and ep.side == suggested_side(scene)
        assert ep.instruction == f"Navigate around the obstacle on the {ep.side} side and reach the cup"
    # a rerun skips what exists
    assert main(["sim", "collect", "--unpaired", "--out", str(out), "--episodes", "3", "--image-size", "32",
                 "--scenes", "classic", "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 3


# -- sources ---------------------------------------------------------------------------
def test_data_episodes_accepts_a_path_a_list_and_weighted_sources():
    assert parse_sources("data/sim") == [DataSource("sim", "data/sim", None)]
    assert [s.weight for s in parse_sources(["data/a", "data/b"])] == [None, None]  # pooled
    sources = parse_sources([{"path": "data/robot", "weight": 3}, {"path": "data/sim", "name": "paired"}])
    assert sources == [DataSource("robot", "data/robot", 3.0), DataSource("paired", "data/sim", 1.0)]


@pytest.mark.parametrize("value, message", [
    ([{"path": "a", "weight": -1}], r"data\.episodes\[0\]\.weight: expected a positive number"),
    ([{"path": "a"}, {"path": "b", "wieght": 1}], r"data\.episodes\[1\]: unknown key\(s\) wieght"),
    (["x/data", "y/data"], "several sources are named data"),
    ([{"weight": 1}], r"data\.episodes\[0\]\.path"),
    ([], "expected a path"),
    ([3], r"data\.episodes\[0\]: expected a path or a mapping"),
])
def test_bad_sources_name_the_entry(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_sources(value)


def test_window_weights_give_each_source_its_share():
    sources = parse_sources([{"path": "r", "weight": 1}, {"path": "s", "weight": 3}])
    windows = ["r"] * 10 + ["s"] * 90
    w = np.array(window_weights(windows, sources))
    share_r = w[:10].sum() / w.sum()
    assert share_r == pytest.approx(0.25)


# -- the label-free figures --------------------------------------------------------------
def test_label_free_figures():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(6, 3, 2))
    mask = np.ones((6, 3), bool)
    mirrored = pred * np.array([1.0, -1.0])
    assert mirror_consistency_error(pred, mirrored, mask) == pytest.approx(0.0)
    assert mirror_consistency_error(pred, pred, mask) == pytest.approx(np.abs(2 * pred[..., 1]).mean() / 2)
    # an instruction-blind policy: the same action under both instructions
    blind = instruction_metrics(None, None, pred, pred, mask)
    assert blind == {"action_difference": 0.0}
    sides = np.array(["left", "right"] * 3)
    pred_y = np.zeros((6, 3, 2))
    pred_y[sides == "left", :, 1] = 0.5  # left instruction: strafe left ...
    pred_y[sides == "right", :, 1] = -0.5
    lateral = lateral_velocity_by_side(pred_y, -pred_y, sides, mask)  # ... and the mirror the other way
    assert lateral == {"left": pytest.approx(0.5), "right": pytest.approx(-0.5)}


# -- training on several sources, diagnose on real-format one-sided episodes ----------------
@pytest.fixture(scope="module")
def co_trained(tmp_path_factory):
    from mobile_vla.train.api import train
    from mobile_vla.train.config import load_train_config

    root = tmp_path_factory.mktemp("robotdata")
    robot = root / "robot"
    texture = np.random.default_rng(0)
    for i, side in enumerate(["left", "right", "left", "right", "left", "right"]):
        write_real_episode(robot, side, size=(90, 160), stamp=f"20251106_1452{i:02d}", texture=texture)
    write_real_episode(robot, "left", size=(90, 160), stamp="20251106_145299", texture=texture,
                       instruction="가장 왼쪽 외곽으로 돌아 컵까지 가세요")
    for scene in range(3):
        write_sim_pair(root / "sim", scene, size=56)
    cfg = load_train_config("configs/real.yaml", [
        f"data.episodes=[{{path: {robot}, weight: 1}}, {{path: {root / 'sim'}, weight: 1}}]",
        "trainer.max_steps=4", *TINY])
    checkpoint = train(cfg, root / "run", trainer_kwargs={"enable_progress_bar": False})
    return checkpoint, robot, root / "sim"


def test_co_training_reports_validation_metrics_per_source(co_trained):
    checkpoint, _, _ = co_trained
    metrics = json.loads((checkpoint / "trainer_state.json").read_text())["metrics"]
    for source in ("robot", "sim"):
        assert {f"val/{source}/rmse_velocity", f"val/{source}/action_difference"} <= set(metrics)
    assert "val/sim/flip_divergence_ratio" in metrics and "val/robot/flip_divergence_ratio" not in metrics
    config = json.loads((checkpoint / "config.json").read_text())
    assert [s["weight"] for s in config["data"]["episodes"]] == [1, 1]


def test_diagnose_on_one_sided_real_format_episodes(co_trained, capsys):
    checkpoint, robot, sim = co_trained
    assert main(["diagnose", "--checkpoint", str(checkpoint), "--data", str(robot), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["paired_labels"] is False
    assert set(out["skipped"]) == {"flip_divergence_ratio", "side_agreement", "side_agreement_any"}
    assert -1.0 <= out["context_cosine"] <= 1.0 and out["action_difference"] >= 0.0
    assert out["mirror_consistency_error"] >= 0.0
    assert set(out["lateral_velocity_by_side"]) == {"left", "right"}
    assert all(math.isfinite(v) for v in out["lateral_velocity_by_side"].values())
    assert out["report_baseline"] == {"context_cosine": 0.74, "action_difference": 0.001}

    assert main(["diagnose", "--checkpoint", str(checkpoint), "--data", str(robot)]) == 0
    text = capsys.readouterr().out
    assert "mirror_consistency_error" in text and "skipped" in text and "flip_divergence_ratio" in text

    # paired data: the same keys where a metric exists in both, plus the paired-only ones
    assert main(["diagnose", "--checkpoint", str(checkpoint), "--data", str(sim), "--json"]) == 0
    paired = json.loads(capsys.readouterr().out)
    assert paired["paired_labels"] is True and paired["skipped"] == {}
    assert set(out) - {"steps", "skipped"} <= set(paired)
    assert {"flip_divergence_ratio", "side_agreement"} <= set(paired)


def test_eval_sim_instruction_side_opposite(co_trained, capsys, tmp_path):
    from mobile_vla.eval.closed_loop import instruction_sides
    from mobile_vla.sim.scene import eval_scene_seed

    scene = sample_scene(eval_scene_seed(0, 0))
    assert instruction_sides(scene, "suggested") == (suggested_side(scene),)
    assert instruction_sides(scene, "opposite") != instruction_sides(scene, "suggested")
    assert instruction_sides(scene, "both") == ("left", "right")

    checkpoint, _, _ = co_trained
    records = tmp_path / "r.jsonl"
    assert main(["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "1", "--instruction-side", "opposite",
                 "--scenes", "classic", "--records", str(records), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instruction_side"] == "opposite" and out["overall"]["episodes"] == 1
    row = json.loads(records.read_text().splitlines()[0])
    assert row["side"] != suggested_side(scene)
