"""A toy Mobile VLA plug-in: one action head, task, scene preset, episode format and policy backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mobile_vla.data.episode import Episode
from mobile_vla.data.formats import EPISODE_FORMATS, EpisodeFormat
from mobile_vla.model.heads import ACTION_HEADS, MobileVLALSTMDecoder
from mobile_vla.policy.backends import POLICY_BACKENDS, BackendSpec
from mobile_vla.sim.expert import expert_action
from mobile_vla.sim.scene import sample_scene
from mobile_vla.sim.task import Task
from mobile_vla.sim.tasks import SCENE_PRESETS, TASKS, ScenePreset, SimTask


# -- action head: the LSTM head with its output halved (any nn.Module following ActionHead works)
@ACTION_HEADS.register("toy-half")
class HalfHead(MobileVLALSTMDecoder):
    def forward(self, features):
        return 0.5 * super().forward(features)


# -- task and scene preset: the cup task on single-box scenes only
TASKS.register("toy-cup", SimTask(target="cup", default_scenes="toy-one-box", expert=expert_action, judge=Task,
                                  description="the cup task, one box"))
SCENE_PRESETS.register("toy-one-box", ScenePreset(task="toy-cup", sample=lambda seed: sample_scene(seed, num_boxes=1),
                                                  description="single-box scenes"))


# -- episode format: one .npz file per episode
def _read_npz(path: Path, load_images: bool) -> Episode:
    with np.load(path) as z:
        images = z["images"]
        return Episode(images=images if load_images else None, actions=z["actions"].astype(np.float32),
                       instruction=str(z["instruction"]), path=path, image_shape=tuple(images.shape[1:]))


def _write_npz(path: Path, episode: Episode) -> Path:
    np.savez(path, images=episode.images, actions=episode.actions, instruction=episode.instruction)
    return path


EPISODE_FORMATS.register("toy-npz", EpisodeFormat(
    find=lambda root: [root] if root.suffix == ".npz" else sorted(root.glob("*.npz")) if root.is_dir() else [],
    owns=lambda p: p.suffix == ".npz", read=_read_npz, write=_write_npz, description="*.npz"))


# -- policy backend: a directory with constant.json holding one action chunk
class ConstantSession:
    def __init__(self, chunk):
        self.chunk = chunk

    def reset(self, instruction=None):
        pass

    def step(self, frame, channel_order="rgb"):
        return self.chunk.copy()


class ConstantPolicy:
    def __init__(self, chunk):
        self.chunk = np.asarray(chunk, np.float32)
        self.window_size, self.chunk_size = 1, len(self.chunk)
        self.metadata = {"image_size": 64, "chunk_size": self.chunk_size, "window_size": 1}

    def new_session(self, instruction):
        return ConstantSession(self.chunk)


POLICY_BACKENDS.register("toy-constant", BackendSpec(
    detect=lambda p: (p / "constant.json").is_file(),
    load=lambda p, device: ConstantPolicy(json.loads((p / "constant.json").read_text())["chunk"]),
    description="a directory with constant.json"))
