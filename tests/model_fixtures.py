"""Small builders for model tests: a tiny model config and synthetic batches (no files)."""

from __future__ import annotations

from pathlib import Path

import torch

from mobile_vla.model.config import ModelConfig
from mobile_vla.processing.processor import Processor, ProcessorConfig
from mobile_vla.train.config import load_train_config
from mobile_vla.vocab.instructions import mirror_instruction

TINY_YAML = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
LEFT = "Go around the box on the left and reach the cup"
RIGHT = "Go around the box on the right and reach the cup"


def small_model_config(window: int = 4, chunk: int = 3, **grounding) -> ModelConfig:
    """The tiny preset at 56 px (16 patches) with a small head: fast on CPU."""
    cfg = ModelConfig()
    cfg.backbone.image_size = 56
    cfg.backbone.latent_query_num = 8
    cfg.head.window_size, cfg.head.fwd_pred_next_n = window, chunk
    cfg.head.lstm_hidden = cfg.head.mlp_hidden = 64
    for key, value in grounding.items():
        setattr(cfg.grounding, key, value)
    return cfg


def processor_for(cfg: ModelConfig) -> Processor:
    p = Processor(ProcessorConfig(image_size=cfg.backbone.image_size, num_image_tokens=cfg.backbone.latent_query_num,
                                  num_action_tokens=cfg.head.num_action_tokens))
    p.config.action_stats = None
    return p


def synthetic_batch(processor: Processor, cfg: ModelConfig, instructions: list[str], seed: int = 0) -> dict:
    """A batch in the dataset contract's format with random frames and targets."""
    g = torch.Generator().manual_seed(seed)
    B, W, N, S = len(instructions), cfg.head.window_size, cfg.head.fwd_pred_next_n, processor.config.image_size
    mirrored = [mirror_instruction(s) for s in instructions]
    tokens = processor.tokenize(instructions)
    cf = processor.tokenize(mirrored)
    actions = torch.rand(B, W, N, 2, generator=g) * 1.6 - 0.8
    return {
        "pixel_values": torch.randn(B, W, 3, S, S, generator=g),
        "frame_mask": torch.ones(B, W, dtype=torch.bool),
        **tokens,
        **{f"cf_{k}": v for k, v in cf.items()},
        "actions": actions,
        "action_mask": torch.ones(B, W, N, dtype=torch.bool),
        "cf_actions": -actions,
        "cf_action_mask": torch.ones(B, W, N, dtype=torch.bool),
        "direction": torch.tensor([0 if "left" in s else 1 for s in instructions]),
        "class_labels": torch.randint(0, 9, (B, W, N), generator=g),
        "instruction": list(instructions),
        "episode_id": [f"ep{i}" for i in range(B)],
    }


def small_train_overrides(window: int = 4, val_check_interval: int = 2) -> list[str]:
    """Overrides of ``configs/tiny.yaml`` for a seconds-long CPU run on 56-px files."""
    return ["model.backbone.image_size=56", "model.backbone.latent_query_num=8", f"model.head.window_size={window}",
            "model.head.fwd_pred_next_n=3", "model.head.lstm_hidden=32", "model.head.mlp_hidden=32",
            "data.batch_size=4", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
            f"trainer.val_check_interval={val_check_interval}", "data.val_fraction=0.25"]


def small_train_config(episodes: Path, *overrides: str, window: int = 4, val_check_interval: int = 2):
    """``configs/tiny.yaml`` with :func:`small_train_overrides` on ``episodes``; ``overrides`` come last and win."""
    return load_train_config(TINY_YAML, [f"data.episodes={episodes}", *small_train_overrides(window, val_check_interval),
                                         *overrides])
