"""How fast does the from-scratch tiny vision tower learn the scene, per learning rate?

Trains only the Kosmos-2 backbone's vision path plus a linear head on the mean image latent to
regress the simulator's scene geometry (``mobile_vla.data.scene_labels``) for a fixed number of
steps at each learning rate, then prints one JSON object with the held-out RMSE (metres) per
label. This is the measurement behind ``optim.backbone_lr`` in ``configs/tiny.yaml``.

    MUJOCO_GL=egl .venv/bin/mobile-vla sim collect --out outputs/probe/train --episodes 320 --seed 0
    MUJOCO_GL=egl .venv/bin/mobile-vla sim collect --out outputs/probe/heldout --episodes 40 --seed 99
    .venv/bin/python benchmarks/vision_lr_probe.py --train outputs/probe/train \
        --heldout outputs/probe/heldout --lrs 1e-3 3e-4 --steps 800
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader


def probe(train_dir: str, heldout_dir: str, lr: float, steps: int, seed: int) -> dict[str, float]:
    from mobile_vla.data.dataset import MobileVLAH5Dataset
    from mobile_vla.policy.checkpoint import build_model
    from mobile_vla.train.checkpoint import build_processor
    from mobile_vla.train.config import load_train_config
    from mobile_vla.train.datamodule import MobileVLADataModule
    from mobile_vla.vocab.scene import SCENE_LABELS, SCENE_SCALE

    torch.manual_seed(seed)
    cfg = load_train_config("configs/tiny.yaml", [f"data.episodes={train_dir}"])
    processor = build_processor(cfg)
    data = MobileVLADataModule(cfg, processor)
    data.setup("fit")
    backbone = build_model(cfg.model, processor).backbone
    head = nn.Linear(backbone.hidden_size, len(SCENE_LABELS))
    optimizer = torch.optim.AdamW([*backbone.parameters(), *head.parameters()], lr)

    def predict(batch: dict) -> torch.Tensor:  # (B*W, labels), scaled
        return head(backbone.image_latents(batch["pixel_values"].flatten(0, 1)).mean(1))

    loader, step = data.train_dataloader(), 0
    while step < steps:
        for batch in loader:
            loss = (predict(batch) - batch["scene"].flatten(0, 1)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    heldout = MobileVLAH5Dataset(heldout_dir, processor, window_size=1, fwd_pred_next_n=cfg.model.head.fwd_pred_next_n)
    pred, label = [], []
    with torch.no_grad():
        for batch in DataLoader(heldout, batch_size=64, collate_fn=heldout.collater):
            pred.append(predict(batch).numpy() * SCENE_SCALE)
            label.append(batch["scene"].flatten(0, 1).numpy() * SCENE_SCALE)
    err = np.concatenate(pred) - np.concatenate(label)
    return {name: round(float(np.sqrt((err[:, i] ** 2).mean())), 3) for i, name in enumerate(SCENE_LABELS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--heldout", required=True)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-4])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {str(lr): probe(args.train, args.heldout, lr, args.steps, args.seed) for lr in args.lrs}
    print(json.dumps({"steps": args.steps, "heldout_rmse_m": results}, indent=2))


if __name__ == "__main__":
    main()
