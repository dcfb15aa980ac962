"""Evaluation commands and the demo, on a tiny checkpoint trained in the test (seconds)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_vla.cli import main
from model_fixtures import LEFT, RIGHT

# A very small recipe: the point is the plumbing and the JSON contract, not the skill.
TINY = [
    "model.backbone.text_dim=32", "model.backbone.text_layers=1", "model.backbone.text_heads=2",
    "model.backbone.vision_dim=32", "model.backbone.vision_layers=1", "model.backbone.vision_heads=2",
    "model.backbone.latent_query_num=4", "model.head.window_size=2", "model.head.fwd_pred_next_n=3",
    "model.head.lstm_hidden=16", "model.head.mlp_hidden=16", "data.batch_size=4",
    "trainer.val_check_interval=4", "trainer.log_every_n_steps=1", "trainer.checkpoint_every_n_steps=0",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from mobile_vla.sim.collect import CollectConfig, collect
    from mobile_vla.train.api import train
    from mobile_vla.train.config import load_train_config

    root = tmp_path_factory.mktemp("eval")
    collect(CollectConfig(out=root / "data", episodes=8, seed=3), workers=1, progress=False)
    cfg = load_train_config("configs/tiny.yaml",
                            [f"data.episodes={root / 'data'}", "trainer.max_steps=4", "data.val_fraction=0.25",
                             *TINY])
    checkpoint = train(cfg, root / "run", trainer_kwargs={"enable_progress_bar": False})
    return checkpoint, root / "data"


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _rate(x):
    return math.isnan(x) or 0.0 <= x <= 1.0


def test_eval_reports_true_errors_per_dimension(trained, capsys):
    checkpoint, data = trained
    out = _json(capsys, ["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--json"])
    for scope in ("first", "chunk"):
        assert set(out["actions"][scope]["rmse"]) == {"linear_x", "linear_y"}
        for name in ("linear_x", "linear_y"):
            mae, rmse = out["actions"][scope]["mae"][name], out["actions"][scope]["rmse"][name]
            assert 0.0 <= mae <= rmse + 1e-9  # RMSE ≥ MAE always; a sqrt-of-Huber "RMSE" would break this
    assert _rate(out["actions"]["class_agreement"]) and _rate(out["actions"]["direction_agreement"])
    assert out["windows"] > 0 and out["actions"]["frames"] > 0
    assert {"context_cosine", "action_difference", "flip_divergence_ratio", "side_agreement"} <= set(out["grounding"])


def test_diagnose_json(trained, capsys, tmp_path):
    checkpoint, data = trained
    plot = tmp_path / "g.png"
    out = _json(capsys, ["diagnose", "--checkpoint", str(checkpoint), "--data", str(data), "--json",
                         "--plot", str(plot)])
    assert -1.0 <= out["context_cosine"] <= 1.0
    assert out["action_difference"] >= 0.0 and out["flip_divergence_ratio"] >= 0.0
    assert _rate(out["side_agreement"])
    assert out["report_baseline"] == {"context_cosine": 0.74, "action_difference": 0.001}
    assert plot.stat().st_size > 0
    phases = out["side_agreement_by_phase"]
    assert set(phases) == {"approach", "beside", "after"}
    assert all(v is None or 0.0 <= v <= 1.0 for v in phases.values())
    steps = out["side_agreement_steps_by_phase"]
    assert steps["approach"] > 0 and sum(steps.values()) <= out["paired_steps"]
    assert _rate(out["side_agreement_any"])


def test_training_on_paired_data_raises_the_flip_ratio(trained, tmp_path):
    """The grounding issue's acceptance: seconds of training on paired data move the ratio above an untrained model's."""
    from mobile_vla import Policy
    from mobile_vla.eval.offline import evaluate_offline
    from mobile_vla.train.api import train
    from mobile_vla.train.config import load_train_config

    _, data = trained
    # tiny.yaml at 56 px, reactive: TINY's 32-d LM is too small to route the instruction in seconds.
    small = ["model.backbone.image_size=56", "model.backbone.latent_query_num=8", "model.head.window_size=1",
             "model.head.fwd_pred_next_n=3", "data.batch_size=8", "trainer.checkpoint_every_n_steps=0",
             "trainer.val_check_interval=1000", "data.val_fraction=0.25",
             # seconds of training on the recorded sentences; filler edits (tiny.yaml's noise) need longer
             "data.instruction_noise=0"]
    ratios, gaps = {}, {}
    for name, extra in (("untrained", ["trainer.max_steps=1", "optim.lr=0", "optim.backbone_lr=0"]),
                        ("trained", ["trainer.max_steps=300", "optim.warmup_steps=0", "optim.lr=3e-3", "data.val_fraction=0"])):
        cfg = load_train_config("configs/tiny.yaml", [f"data.episodes={data}", *small, *extra])
        checkpoint = train(cfg, tmp_path / name, trainer_kwargs={"enable_progress_bar": False})
        grounding = evaluate_offline(Policy.from_checkpoint(checkpoint), data, progress=False)["grounding"]
        ratios[name] = grounding["flip_divergence_ratio"]
        gaps[name] = left_right_gap(Policy.from_checkpoint(checkpoint), data)
    assert ratios["untrained"] < 0.1  # FiLM starts as the identity: the instruction barely moves the action
    assert ratios["trained"] > ratios["untrained"] + 0.2, ratios  # 200 steps gave 0.18 on an AVX-512 CPU
    # The instruction reaches the action: on the same frames, left and right differ by more than
    # 0.1 m/s (the user's report measured 0.001; an untrained model gives about 1e-5).
    assert gaps["untrained"] < 0.01 and gaps["trained"] > 0.1, gaps


def left_right_gap(policy, data) -> float:
    """Mean over one episode's frames of ||first action(left) - first action(right)||, m/s."""
    from mobile_vla.data.formats import list_episodes, read_episode

    frames = read_episode(list_episodes(data)[0]).images  # BGR on disk
    left, right = policy.new_session(LEFT), policy.new_session(RIGHT)
    gaps = [np.linalg.norm(left.step(f, channel_order="bgr")[0] - right.step(f, channel_order="bgr")[0])
            for f in frames]
    return float(np.mean(gaps))


def test_eval_sim_json_per_side(trained, capsys, tmp_path):
    checkpoint, _ = trained
    out = _json(capsys, ["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "4", "--seed", "1",
                         "--strategy", "ensemble", "--json", "--video", str(tmp_path / "v"),
                         "--plot", str(tmp_path / "r.png")])
    assert set(out) >= {"overall", "left", "right"}
    assert out["left"]["episodes"] == 2 and out["right"]["episodes"] == 2
    for key in ("overall", "left", "right"):
        for metric in ("success_rate", "collision_rate", "timeout_rate", "side_accuracy"):
            assert _rate(out[key][metric])
        r = out[key]
        assert r["success_rate"] + r["collision_rate"] + r["timeout_rate"] + r["wrong_target_rate"] == pytest.approx(1.0)
        assert r["mean_steps"] >= 1
    assert list((tmp_path / "v").glob("*.mp4")) and (tmp_path / "r.png").stat().st_size > 0
    # Paired scenes: the goal lies on the instructed side in one episode of each scene, across in the other.
    assert out["by_goal_side"]["instructed"]["episodes"] == out["by_goal_side"]["other"]["episodes"] == 2
    failed = sum(share for phases in out["failure_phases"].values() for share in phases.values())
    assert failed == pytest.approx(1 - out["overall"]["success_rate"])  # every failure placed once
    blank = _json(capsys, ["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "2", "--seed", "1",
                           "--blank-frames", "--json"])
    assert blank["controller"] == "policy" and blank["blank_frames"] is True
    # Without --strategy, eval-sim executes chunks as the demo does, so it reproduces the demo's figures.
    from mobile_vla.demo import DemoConfig

    assert blank["strategy"] == DemoConfig().strategy == "ensemble" and blank["ensemble_decay"] == 0.5
    steep = _json(capsys, ["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "2", "--seed", "1",
                           "--ensemble-decay", "60", "--json"])
    first = _json(capsys, ["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "2", "--seed", "1",
                           "--strategy", "first", "--json"])
    assert steep["ensemble_decay"] == 60 and first["ensemble_decay"] is None
    assert steep["overall"] == first["overall"]  # trusting the newest chunk alone is `first`
    assert main(["eval-sim", "--checkpoint", str(checkpoint), "--strategy", "first", "--ensemble-decay", "0.5"]) == 2
    assert "--strategy ensemble" in capsys.readouterr().err
    assert blank["scene_seeds"] == out["scene_seeds"][:1]


def test_demo_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    overrides = ["num_scenes=3", "heldout_scenes=2", "workers=1", "train_steps=3", "dagger_rounds=1", "dagger_scenes=2",
                 "dagger_steps=2", "eval_episodes=2", "heldout_episodes=2", "expert.clearance=0.35", "family_episodes=2",
                 "dagger_strategy=ensemble", "train_overrides=[" + ",".join(TINY) + ",data.val_fraction=0.34]"]
    report = _json(capsys, ["demo", "--out", str(out), "--seed", "5", "--json", *overrides])
    for key in ("success_left", "success_right", "blind_success_left", "blind_success_right", "collision_rate",
                "flip_divergence_ratio", "side_agreement", "train_windows", "wall_minutes"):
        assert key in report
    assert report["scenes"] == "varied"  # the cup task's default preset
    assert report["train_windows"] > 0 and report["wall_minutes"] > 0
    full = json.loads((out / "report.json").read_text())
    assert full["config"]["expert"]["clearance"] == 0.35
    # the published checkpoint averages both rounds' weights (the default; selection: the fork test)
    assert full["selection"] is None and full["average"] == {"rounds": [0, 1]} and full["train_steps"] == 3 + 2
    from safetensors.torch import load_file

    rounds = [load_file(str(out / f"train_{r}" / "checkpoint" / "model.safetensors")) for r in (0, 1)]
    published = load_file(str(out / "checkpoint" / "model.safetensors"))
    key = next(k for k, v in published.items() if v.is_floating_point() and not torch.equal(rounds[0][k], rounds[1][k]))
    torch.testing.assert_close(published[key], (rounds[0][key] + rounds[1][key]) / 2)
    assert full["scenes"] == "varied" and len(full["eval_scene_seeds"]) == 1
    assert full["closed_loop_blind"]["left"]["episodes"] == 1 and full["closed_loop_blind"]["right"]["episodes"] == 1
    from mobile_vla.demo import summary_table

    assert "blind baseline success, left" in summary_table(full)
    goal = full["closed_loop_by_goal_side"]  # the one scene pair: one episode with the cup on each side
    assert goal["instructed"]["episodes"] == goal["other"]["episodes"] == 1
    assert "goal on the instructed / other side" in summary_table(full)
    assert re.search(r"published checkpoint +average of rounds 0-1\n", summary_table(full))
    assert full["closed_loop_expert"]["overall"]["episodes"] == 2  # the expert on the same scenes
    assert full["expert_success_left"] == full["closed_loop_expert"]["left"]["success_rate"]
    assert (out / "checkpoint" / "model.safetensors").is_file()
    assert (out / "report.md").read_text().startswith("# Mobile VLA demo report")
    for figure in full["figures"].values():
        assert Path(figure).stat().st_size > 0
    assert "rollouts" in full["figures"] and "training_curves" in full["figures"]
    assert len(list((out / "data" / "dagger_1").glob("*.h5"))) == 4
    dagger = json.loads((out / "data" / "dagger_1" / "fingerprint.json").read_text())
    assert dagger["policy.strategy"] == "ensemble"  # DAgger rolled the policy out as configured
    page = (out / "report.html").read_text()  # self-contained: every video and figure inline
    assert page.count("src='data:video/mp4;base64,") == 2 and "src='data:image/png;base64," in page
    assert "<td>policy</td>" in page and "src='http" not in page
    assert set(full["success_by_family"]) == {"paraphrase", "relational", "negated", "korean"}
    assert all(set(v) == {"left", "right"} for v in full["success_by_family"].values())
    assert set(full["no_side"]["sides_taken"]) == {"left", "right"} and list(full["tasks"]) == ["cup"]


def test_demo_two_tasks_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    overrides = ["num_scenes=2", "heldout_scenes=1", "workers=1", "train_steps=2", "dagger_rounds=0", "eval_episodes=2",
                 "heldout_episodes=0", "family_episodes=2", "mixed_episodes=2", "select_episodes=2", "average_rounds=1",
                 "mixed_fraction=0.5", "ensemble_decay=1.0",
                 "train_overrides=[" + ",".join(TINY) + ",data.val_fraction=0.25]"]
    _json(capsys, ["demo", "--out", str(out), "--tasks", "cup,basket", "--json", *overrides])
    full = json.loads((out / "report.json").read_text())
    assert list(full["tasks"]) == ["cup", "basket"] and full["config"]["tasks"] == ["cup", "basket"]
    assert full["ensemble_decay"] == 1.0  # every evaluation blended chunks as configured
    for task in ("cup", "basket"):
        assert set(full["tasks"][task]["success_by_family"]) == {"paraphrase", "relational", "negated", "korean"}
        assert _rate(full["tasks"][task]["mixed"]["confusion"])
    # half of each task's scenes hold every task's objects, from a seed stream of their own
    from mobile_vla.data.formats import list_episodes, read_episode

    folders = {p.name: [read_episode(e) for e in list_episodes(p)] for p in (out / "data").iterdir()}
    assert {name: len(eps) for name, eps in folders.items()} == {
        "sim_cup": 2, "sim_basket": 2, "sim_mixed_cup": 2, "sim_mixed_basket": 2}
    presets = {name: {e.attrs["scenes"] for e in eps} for name, eps in folders.items()}
    assert presets == {"sim_cup": {"varied"}, "sim_basket": {"baskets"}, "sim_mixed_cup": {"mixed"},
                       "sim_mixed_basket": {"basket-mixed"}}
    seeds = {name: {e.attrs["scene_seed"] for e in eps} for name, eps in folders.items()}
    assert not seeds["sim_mixed_basket"] & seeds["sim_basket"]
    assert full["timings_s"].keys() >= {"collect_cup", "collect_cup_mixed", "collect_basket_mixed"}


def test_eval_sim_instruction_families(trained, capsys):
    checkpoint, _ = trained
    base = ["eval-sim", "--checkpoint", str(checkpoint), "--episodes", "2", "--json"]
    korean = _json(capsys, [*base, "--instructions", "korean"])
    assert korean["instructions"] == "korean" and korean["confusion"] is None
    alias = _json(capsys, [*base, "--heldout-phrasings"])
    assert alias["instructions"] == "paraphrase"
    free = _json(capsys, [*base, "--instructions", "no-side", "--task", "basket"])
    assert free["instructions"] == "no-side" and sum(free["sides_taken"].values()) <= 1.0
    mixed = _json(capsys, [*base, "--scenes", "mixed"])
    assert _rate(mixed["confusion"])
    with pytest.raises(SystemExit):
        main([*base, "--instructions", "klingon"])


def test_fork_demo_resumes_after_the_first_training(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fork_demo", Path(__file__).parents[1] / "scripts" / "fork_demo.py")
    fork_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fork_demo)
    base = ["num_scenes=2", "heldout_scenes=1", "workers=1", "train_steps=2", "eval_episodes=2", "heldout_episodes=0",
            "family_episodes=2", "dagger_scenes=1", "select_episodes=0", "train_overrides=[" + ",".join(TINY) + ",data.val_fraction=0.25]"]
    src, dst = tmp_path / "src", tmp_path / "dst"
    _json(capsys, ["demo", "--out", str(src), "--seed", "4", "--json", *base, "dagger_rounds=1", "dagger_steps=2"])
    # The first training's schedule (train_steps + rounds × steps) must stay: 2 + 1 × 2 = 2 + 2 × 1.
    with pytest.raises(SystemExit, match="schedule"):
        fork_demo.main([str(src), str(tmp_path / "bad"), *base, "dagger_rounds=2", "dagger_steps=2"])
    with pytest.raises(SystemExit, match="num_scenes"):
        fork_demo.main([str(src), str(tmp_path / "bad"), *base[1:], "num_scenes=3", "dagger_rounds=1", "dagger_steps=2"])
    assert not (tmp_path / "bad").exists()
    # DAgger's sampling weights do not touch the first training: a fork may change them
    rounds = ["dagger_rounds=2", "dagger_steps=1", "dagger_recent_weight=3"]
    assert fork_demo.main([str(src), str(dst), *base, *rounds]) == 0
    assert "forked" in capsys.readouterr().out
    weights = dst / "train_0" / "checkpoint" / "model.safetensors"
    copied = weights.stat().st_mtime_ns
    _json(capsys, ["demo", "--out", str(dst), "--seed", "4", "--json", *base, *rounds])
    assert weights.stat().st_mtime_ns == copied  # the first training was reused, not rerun
    report = json.loads((dst / "report.json").read_text())
    assert (dst / "data" / "dagger_2").is_dir() and report["train_steps"] == 4
    # round 2 drew its own 2 new episodes 3 times as often as each of the 6 earlier ones
    sources = json.loads((dst / "train_2" / "fingerprint.json").read_text())["data.episodes"]
    assert [(s["name"], s["weight"]) for s in sources] == [("sim", 4.0), ("dagger_1", 2.0), ("dagger_2", 6.0)]
    # Choosing among the rounds' checkpoints changes no training: every round is copied and reused.
    chosen = tmp_path / "chosen"
    assert fork_demo.main([str(dst), str(chosen), *base[:-2], *rounds, "select_episodes=2", "average_rounds=1", base[-1]]) == 0
    assert "every round" in capsys.readouterr().out
    trained = {r: (chosen / f"train_{r}" / "checkpoint" / "model.safetensors").stat().st_mtime_ns for r in range(3)}
    _json(capsys, ["demo", "--out", str(chosen), "--seed", "4", "--json", *base[:-2], *rounds, "select_episodes=2", "average_rounds=1", base[-1]])
    assert {r: (chosen / f"train_{r}" / "checkpoint" / "model.safetensors").stat().st_mtime_ns
            for r in range(3)} == trained
    selection = json.loads((chosen / "report.json").read_text())["selection"]
    assert [r["round"] for r in selection["rounds"]] == [0, 1, 2] and selection["episodes"] == 2
    best = max(r["success"] for r in selection["rounds"])
    assert selection["rounds"][selection["selected_round"]]["success"] == best
    assert all(r["success"] < best for r in selection["rounds"][selection["selected_round"] + 1:])  # ties: the later
    from mobile_vla.demo import summary_table

    assert f"round {selection['selected_round']} (best of 3 on 2 validation episodes)" in summary_table(
        json.loads((chosen / "report.json").read_text()))
    published = (chosen / "checkpoint" / "model.safetensors").read_bytes()
    picked = chosen / f"train_{selection['selected_round']}" / "checkpoint" / "model.safetensors"
    assert published == picked.read_bytes()
