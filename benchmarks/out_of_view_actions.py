"""What a checkpoint predicts where the cup is out of view, against the labels, on simulator episodes.

Groups every frame of ``--data``'s episodes by the phase relative to the obstacle cluster
(approach, beside, after), by whether the cup (farther than 0.7 m) is in the camera's field of
view (:func:`mobile_vla.sim.visibility.steps_out_of_view`, from the episode's scene seed and
trajectory) and by the instructed side, and reports per group the mean lateral velocity (m/s) of
the label and of the prediction, the same under the mirrored instruction (the counterfactual
label), and how often the prediction's lateral sign matches the label's.

Past the cluster with the cup out of view the expert's label is the same under both
instructions (drive to the cup), so a policy trained on those pairs learns to ignore the
instruction there — the one clue it has to the lane it is in. This shows it.

    MUJOCO_GL=egl python benchmarks/out_of_view_actions.py --checkpoint outputs/demo/checkpoint \\
        --data outputs/demo/data/dagger_2 --episodes 80

Prints one JSON object.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from mobile_vla import Policy
from mobile_vla.data.dataset import MobileVLAH5Dataset, resolve_episodes
from mobile_vla.data.formats import read_episode
from mobile_vla.eval.offline import paired_outputs
from mobile_vla.jsonio import dumps
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.visibility import steps_out_of_view
from mobile_vla.vocab.scene import PHASES

LATERAL = 1  # linear_y in the policy's action


def out_of_view(path: Path) -> np.ndarray:
    """``(T,)`` bool per frame of a simulator episode file."""
    ep = read_episode(path, load_images=False)
    attrs = ep.attrs
    preset = resolve(str(attrs.get("task", "cup")), str(attrs["scenes"]))[3]
    scene = preset.sample(int(attrs["scene_seed"]))
    return steps_out_of_view(scene, np.asarray(attrs["trajectory"])[: ep.num_frames])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="a folder of simulator episodes (sim collect, a demo's data/...)")
    p.add_argument("--episodes", type=int, default=80, help="the first N episode files")
    args = p.parse_args(argv)

    policy = Policy.from_checkpoint(args.checkpoint)
    paths = resolve_episodes(args.data)[: args.episodes]
    W = policy.window_size
    dataset = MobileVLAH5Dataset(paths, policy.processor, window_size=W, fwd_pred_next_n=policy.chunk_size)
    hidden = [out_of_view(path) for path in paths]
    oov = np.array([hidden[ep][frame] for ep, frame in dataset.window_frames()])
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=32, collate_fn=dataset.collater):
            out = paired_outputs(policy.model, policy.processor, batch)
            for key in ("pred", "target", "pred_mirror", "target_mirror", "phase", "side"):
                parts.setdefault(key, []).append(np.asarray(out[key])[W - 1 :: W])  # each window's newest frame
    o = {k: np.concatenate(v) for k, v in parts.items()}
    groups = {}
    for phase_index, phase in enumerate(PHASES):
        for view, hidden_cup in (("in_view", False), ("out_of_view", True)):
            for side in ("left", "right"):
                m = (o["phase"] == phase_index) & (oov == hidden_cup) & (o["side"] == side)
                if not m.any():
                    continue
                lat = {k: o[k][m, 0, LATERAL] for k in ("pred", "target", "pred_mirror", "target_mirror")}
                groups[f"{phase}/{view}/{side}"] = {
                    "frames": int(m.sum()),
                    "label_lateral": round(float(lat["target"].mean()), 3),
                    "predicted_lateral": round(float(lat["pred"].mean()), 3),
                    "mirrored_label_lateral": round(float(lat["target_mirror"].mean()), 3),
                    "mirrored_predicted_lateral": round(float(lat["pred_mirror"].mean()), 3),
                    "sign_agreement": round(float(np.mean(np.sign(lat["pred"]) == np.sign(lat["target"]))), 3),
                }
    print(dumps({"checkpoint": args.checkpoint, "data": args.data, "episodes": len(paths), "groups": groups}))


if __name__ == "__main__":
    main()
