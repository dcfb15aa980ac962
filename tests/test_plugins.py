"""Extension points: registries, and a plug-in package found through the ``mobile_vla.plugins``
entry-point group and used through the command line (``tests/toy_plugin``, one plug-in of each kind)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobile_vla.errors import MobileVLAError
from mobile_vla.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_registry_lookup_errors_list_the_registered_names():
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)

    @reg.register("b")
    def b():
        return 2

    assert reg.get("a") == 1 and reg.get("b") is b and reg.names() == ["a", "b"] and "a" in reg
    with pytest.raises(MobileVLAError, match="unknown widget 'c'; registered: a, b"):
        reg.get("c")
    with pytest.raises(MobileVLAError, match="registered twice"):
        reg.register("a", 3)


def test_built_in_entries_are_registered():
    from mobile_vla.data.formats import EPISODE_FORMATS
    from mobile_vla.model.heads import ACTION_HEADS
    from mobile_vla.policy.backends import POLICY_BACKENDS
    from mobile_vla.sim.tasks import SCENE_PRESETS, TASKS

    assert {"lstm", "classification"} <= set(ACTION_HEADS.names())
    assert "cup" in TASKS and SCENE_PRESETS.get("classic").task == "cup"
    assert "hdf5" in EPISODE_FORMATS and "torch" in POLICY_BACKENDS


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """An environment where the toy plug-in package is installed (``pip install --target``)."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "toy_plugin"
    shutil.copytree(ROOT / "tests" / "toy_plugin", source)  # building writes next to the sources
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), str(ROOT / "src")]), MUJOCO_GL="egl")
    return env


def cli(env, *args) -> dict:
    done = subprocess.run([sys.executable, "-m", "mobile_vla.cli", *args, "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_plugin_package_plugs_in_one_of_each_kind(plugin_env, tmp_path):
    listed = cli(plugin_env, "plugins")
    assert listed["plugins"] == ["toy"]
    assert "toy-half" in listed["action_heads"] and "toy-npz" in listed["episode_formats"]
    assert listed["scene_presets"]["toy-one-box"]["task"] == "toy-cup"
    assert "toy-constant" in listed["policy_backends"]

    # task + preset: the expert solves the plug-in's scenes
    expert = cli(plugin_env, "sim", "expert-eval", "--task", "toy-cup", "--episodes", "4")
    assert expert["scenes"] == "toy-one-box" and expert["success_rate"] == 1.0

    # episode format: inspect and train read .npz episodes; training uses the plug-in head
    data = tmp_path / "npz"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i, side in enumerate(["left", "right"] * 2):
        sign = 1.0 if side == "left" else -1.0
        actions = np.tile(np.array([[0.8, 0.5 * sign, 0.0]], np.float32), (12, 1))
        np.savez(data / f"ep{i}.npz", images=rng.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8), actions=actions,
                 instruction=f"Go around the box on the {side} and reach the cup")
    inspected = cli(plugin_env, "data", "inspect", str(data))
    assert inspected["episodes"] == 4 and not inspected["errors"]
    trained = cli(plugin_env, "train", "--config", str(ROOT / "configs" / "tiny.yaml"), "--out", str(tmp_path / "run"),
                  f"data.episodes={data}", "model.head.type=toy-half", "trainer.max_steps=2", "data.batch_size=2",
                  "data.val_fraction=0", "trainer.accelerator=cpu", "data.num_workers=0")
    config = json.loads((Path(trained["checkpoint"]) / "config.json").read_text())
    assert config["model"]["head"]["type"] == "toy-half"

    # policy backend: eval-sim drives the plug-in's policy in the plug-in's task
    policy_dir = tmp_path / "constant"
    policy_dir.mkdir()
    (policy_dir / "constant.json").write_text(json.dumps({"chunk": [[0.5, 0.0]] * 3}))
    report = cli(plugin_env, "eval-sim", "--checkpoint", str(policy_dir), "--task", "toy-cup", "--episodes", "2")
    assert report["task"] == "toy-cup" and report["overall"]["episodes"] == 2
