"""``train(config) -> Path``: the one entry point the CLI and the demo call."""

from __future__ import annotations

import copy
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from mobile_vla.errors import MobileVLAError
from mobile_vla.policy import checkpoint as ckpt
from mobile_vla.processing.processor import Processor
from mobile_vla.train.checkpoint import build_processor
from mobile_vla.train.config import TrainConfig
from mobile_vla.train.datamodule import MobileVLADataModule
from mobile_vla.train.module import MobileVLAModule

log = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoint"
# What train() writes under its output directory (deleted by force_restart).
OUTPUTS = (CHECKPOINT_DIR, f".{CHECKPOINT_DIR}.*", f".{CHECKPOINT_DIR}-*.ckpt", "tensorboard")
# Settings that may change when a run continues in the same directory, and why:
FINGERPRINT_EXEMPT = (
    "trainer.max_steps",  # train --resume and the demo's DAgger rounds continue a run for more steps
    "trainer.out_dir",  # where, not what
    "trainer.log_every_n_steps",  # logging cadence
    "trainer.checkpoint_every_n_steps",  # when state is saved, not what is learned
    # Validation only draws curves: it draws no randomness training uses and changes no weight
    # (tests/test_resume.py), so runs from before the demo validated every train_steps/2 resume.
    "trainer.val_check_interval",
    "trainer.limit_val_batches",
    "data.num_workers",  # loader parallelism: items depend on (seed, index) only
    "data.cache",  # the decoded-frame cache holds the same pixels
    "processor.action_stats",  # fitted from the training split, not chosen; a continued run reuses its checkpoint's
)


def train_fingerprint(config: TrainConfig, resume: str | Path | None) -> dict[str, Any]:
    """The settings that shape the model a training directory holds (see mobile_vla.fingerprint)."""
    from mobile_vla.config import to_dict
    from mobile_vla.fingerprint import fingerprint

    return fingerprint({**to_dict(config), "resume_from": str(resume) if resume else None}, FINGERPRINT_EXEMPT)


class CheckpointDirCallback(L.Callback):
    """Writes the checkpoint directory every ``every_n_steps`` optimizer steps and at the end."""

    def __init__(self, directory: Path, config: TrainConfig, every_n_steps: int = 0):
        self.directory = Path(directory)
        self.config = config
        self.every_n_steps = every_n_steps
        self._last_saved = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0 and step != self._last_saved:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._last_saved:
            self.save(trainer, pl_module)

    def save(self, trainer: L.Trainer, pl_module: MobileVLAModule) -> None:
        step = trainer.global_step
        lightning_state = self.directory.parent / f".{self.directory.name}-{step}-{os.getpid()}.ckpt"
        trainer.save_checkpoint(lightning_state, weights_only=False)  # collective: every rank calls it
        if trainer.is_global_zero:
            state = {"step": step, "epoch": trainer.current_epoch, "metrics": _metrics(trainer),
                     "schedule_steps": pl_module.schedule_steps or int(trainer.estimated_stepping_batches)}
            ckpt.save_checkpoint(self.directory, pl_module.model, self.config, pl_module.processor, state,
                                 extra_files={ckpt.LIGHTNING_FILE: lightning_state})
            log.info("checkpoint (step %d) -> %s", step, self.directory)
        trainer.strategy.barrier()
        self._last_saved = step


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    out = {}
    for k, v in trainer.callback_metrics.items():
        value = float(v)
        if math.isfinite(value):
            out[k] = value
    return out


def train(config: TrainConfig, out_dir: str | Path | None = None, resume: str | Path | None = None,
          trainer_kwargs: dict[str, Any] | None = None, force_restart: bool = False) -> Path:
    """Train per ``config``; returns the checkpoint directory ``<out_dir>/checkpoint``.

    A rerun into the same ``out_dir`` with the same settings continues from the last checkpoint
    there (weights, optimiser, schedule, data position and random state), or returns it at once
    when it already reached ``trainer.max_steps``; with other settings it raises
    :class:`~mobile_vla.fingerprint.FingerprintMismatch` unless ``force_restart``.

    Args:
        config: a validated :class:`TrainConfig`.
        out_dir: overrides ``config.trainer.out_dir``.
        resume: a checkpoint directory written by training; continues its step count, optimizer
            and schedule (its processor is reused, not refitted).
        trainer_kwargs: extra ``lightning.Trainer`` arguments (tests, e.g. ``enable_progress_bar``).
        force_restart: delete what ``out_dir`` holds from earlier runs and start over.
    """
    from mobile_vla.fingerprint import claim

    # A copy: the fitted processor is written into the config saved with the checkpoint, and the
    # caller's config must not change with it (the demo passes one config to every DAgger round,
    # and a resumed round would otherwise see other settings than the uninterrupted one did).
    config = copy.deepcopy(config)
    config.validate()
    t = config.trainer
    out = Path(out_dir or t.out_dir)
    own = out / CHECKPOINT_DIR
    if claim(out, train_fingerprint(config, resume), OUTPUTS, force_restart,
             defaults=train_fingerprint(TrainConfig(), resume)) and (own / ckpt.LIGHTNING_FILE).is_file():
        step = int(ckpt.read_state(own).get("step", -1))
        if step >= t.max_steps:
            log.info("%s already trained (step %d); reusing it", own, step)
            return own
        log.info("continuing the interrupted run in %s from step %d", own, step)
        resume = own
    for stale in out.glob(f".{CHECKPOINT_DIR}-*.ckpt"):  # Lightning state of a killed save
        stale.unlink()
    L.seed_everything(t.seed, workers=True, verbose=False)

    lightning_state = None
    schedule_steps = config.optim.schedule_steps
    if resume is not None:
        resume = Path(resume)
        lightning_state = resume / ckpt.LIGHTNING_FILE
        if not lightning_state.is_file():
            raise MobileVLAError(f"{lightning_state}: no training state to resume from (not a training checkpoint?)")
        processor = Processor.load(resume)
        schedule_steps = schedule_steps or ckpt.read_state(resume).get("schedule_steps")
    else:
        processor = build_processor(config)
    data = MobileVLADataModule(config, processor)
    if processor.config.action_stats is None:
        data.fit_processor()
    config.processor = processor.config
    model = ckpt.build_model(config.model, processor)
    module = MobileVLAModule(config, processor, model, schedule_steps=schedule_steps)

    checkpoint_dir = out / CHECKPOINT_DIR
    kwargs: dict[str, Any] = dict(
        max_steps=t.max_steps, max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
        gradient_clip_val=t.gradient_clip_val if t.gradient_clip_val > 0 else None,
        accumulate_grad_batches=t.accumulate_grad_batches, val_check_interval=t.val_check_interval,
        check_val_every_n_epoch=None, limit_val_batches=t.limit_val_batches if data.val_paths else 0,
        log_every_n_steps=t.log_every_n_steps, enable_checkpointing=False, num_sanity_val_steps=0,
        logger=TensorBoardLogger(save_dir=str(out), name="tensorboard", version=""),
        callbacks=[CheckpointDirCallback(checkpoint_dir, config, t.checkpoint_every_n_steps)],
        default_root_dir=str(out),
    )
    kwargs.update(trainer_kwargs or {})
    trainer = L.Trainer(**kwargs)
    # The training sampler resumes at the checkpoint's batch (train/sampling.py); Lightning cannot
    # see that and warns that a mid-epoch resume is unreliable.
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
    log.info("training %s: %d trainable / %d parameters", config.model.backbone.preset,
             sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))
    trainer.fit(module, datamodule=data, ckpt_path=lightning_state, weights_only=True)
    return checkpoint_dir


