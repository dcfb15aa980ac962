"""The training configuration: data + processor + model + optim + trainer sections (plain data).

Every field is documented in ``docs/training.md``. The processor's ``image_size``,
``num_image_tokens`` and ``num_action_tokens`` are derived from the model (one source of truth):
leave them out of the YAML, or set them to the derived values; anything else is an error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mobile_vla.config import apply_overrides, from_dict, load_yaml
from mobile_vla.data.sources import parse_sources
from mobile_vla.errors import ConfigError
from mobile_vla.model.config import ModelConfig, backbone_geometry
from mobile_vla.model.heads import ACTION_HEADS
from mobile_vla.processing.processor import ProcessorConfig


@dataclasses.dataclass
class DataConfig:
    # A folder (searched recursively) or episode file, a list of them, or weighted sources
    # [{path, weight, name}, ...] (mobile_vla.data.sources).
    episodes: Any = "data/sim"
    val_fraction: float = 0.1
    split_seed: int = 0
    batch_size: int = 8
    num_workers: int = 0
    window_stride: int = 1
    mirror_prob: float = 0.0
    color_jitter: float = 0.0
    instruction_noise: float = 0.0  # probability of filler-word edits to an item's instruction
    cache: bool = True
    seed: int = 0


@dataclasses.dataclass
class OptimConfig:
    lr: float = 1e-3
    backbone_lr: float | None = None  # the Kosmos-2 backbone's own rate (None: lr); the head keeps lr
    weight_decay: float = 0.01
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio at the last step
    # Steps the warm-up + cosine spans (None: trainer.max_steps; a resumed run keeps the span of
    # the checkpoint it resumes, so continuing for more steps stays at the floor, never climbs).
    schedule_steps: int | None = None


@dataclasses.dataclass
class TrainerConfig:
    max_steps: int = 1000
    max_epochs: int = -1  # -1: bounded by max_steps only
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | fsdp
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed
    gradient_clip_val: float = 1.0
    accumulate_grad_batches: int = 1
    val_check_interval: int = 200  # steps between validations (clamped to the epoch length)
    limit_val_batches: float = 1.0
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 0  # 0: only at the end
    seed: int = 0
    out_dir: str = "outputs/train"


@dataclasses.dataclass
class TrainConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    processor: ProcessorConfig = dataclasses.field(default_factory=ProcessorConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)

    def derived_processor_fields(self) -> dict[str, int]:
        image_size, num_image_tokens = backbone_geometry(self.model.backbone)
        return {"image_size": image_size, "num_image_tokens": num_image_tokens,
                "num_action_tokens": self.model.head.num_action_tokens}

    def validate(self) -> None:
        self.model.validate()
        if self.model.head.type not in ACTION_HEADS:
            raise ConfigError(f"model.head.type: expected a registered action head "
                              f"({', '.join(ACTION_HEADS.names())}), got {self.model.head.type!r}")
        for key, value in self.derived_processor_fields().items():
            have = getattr(self.processor, key)
            if have != value:
                raise ConfigError(
                    f"processor.{key}={have} disagrees with the model (expects {value}); "
                    "leave it out of the config, it is derived from model settings"
                )
        if self.trainer.strategy not in ("auto", "ddp", "ddp_spawn", "fsdp", "ddp_find_unused_parameters_true"):
            raise ConfigError(f"trainer.strategy: expected auto | ddp | ddp_spawn | fsdp, got {self.trainer.strategy!r}")
        parse_sources(self.data.episodes)
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction: expected [0, 1), got {self.data.val_fraction}")


def train_config_from_dict(data: dict) -> TrainConfig:
    """Strict dict → :class:`TrainConfig`, with the derived processor fields filled in and checked."""
    config = from_dict(TrainConfig, data)
    given = data.get("processor") or {}
    for key, value in config.derived_processor_fields().items():
        if key not in given:
            setattr(config.processor, key, value)
    config.validate()
    return config


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """YAML file (optional) + ``KEY=VALUE`` overrides → validated :class:`TrainConfig`."""
    data = load_yaml(path) if path else {}
    apply_overrides(data, overrides or [])
    return train_config_from_dict(data)
