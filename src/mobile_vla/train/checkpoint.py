"""Training's side of checkpoints: the processor a config asks for, and untrained checkpoints.

The directory format itself (write, read, rebuild) is :mod:`mobile_vla.policy.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mobile_vla.config import to_dict
from mobile_vla.policy.checkpoint import build_model, default_action_stats, save_checkpoint
from mobile_vla.processing.processor import Processor, ProcessorConfig
from mobile_vla.train.config import TrainConfig


def build_processor(config: TrainConfig) -> Processor:
    """The processor for ``config`` (action statistics as configured, possibly not yet fitted)."""
    pc = ProcessorConfig(**{**to_dict(config.processor), "action_stats": config.processor.action_stats})
    return Processor(pc)


def init_checkpoint(directory: str | Path, config: TrainConfig | None = None,
                    episodes: str | Path | list | None = None, seed: int = 0) -> Path:
    """Write an UNTRAINED checkpoint quickly (for tests of serving/eval and smoke runs).

    Action statistics come from ``episodes`` (a folder or list of files) when given, else the
    teleop range (±1.15 m/s).
    """
    config = config or TrainConfig()
    config.validate()
    processor = build_processor(config)
    if episodes is not None:
        from mobile_vla.data.dataset import action_stats

        processor.fit_action_stats(action_stats(episodes))
    else:
        default_action_stats(processor)
    torch.manual_seed(seed)
    model = build_model(config.model, processor)
    return save_checkpoint(directory, model, config, processor, {"step": 0, "epoch": 0, "metrics": {}})
