"""The checkpoint directory: everything needed to rebuild a policy, and nothing that unpickles.

Layout::

    model.safetensors     the MobileVLA state dict (incl. LoRA adapters and action tokens)
    config.json           the training configuration (``model`` and ``processor`` sections rebuild
                          the network) + the exact Kosmos-2 architecture (``kosmos2_config``)
    processor.json        Processor.save: image transform, token layout, action statistics
    tokenizer/            Processor.save
    trainer_state.json    step, epoch, metrics
    trainer.ckpt          (training only) Lightning's optimizer/loop state for --resume,
                          read back with ``weights_only=True``

Serving and evaluation read checkpoints through this module alone, so loading a policy needs
neither the training nor the simulator code. Writes are atomic: the files are written and
fsynced in a hidden version directory next to the target (``.checkpoint.step-0000800.XXXX``),
and ``checkpoint`` is a symlink swapped to it by one rename, so a reader never sees a
half-written checkpoint and a crash at any point leaves a complete one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from mobile_vla.config import from_dict, to_dict
from mobile_vla.errors import MobileVLAError
from mobile_vla.jsonio import fsync_dir, fsync_file, json_default
from mobile_vla.model.config import ModelConfig
from mobile_vla.model.vla import MobileVLA
from mobile_vla.processing.processor import Processor
from mobile_vla.vocab.actions import CLASS_DIRECTIONS, TELEOP_SPEED

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "trainer_state.json"
LIGHTNING_FILE = "trainer.ckpt"


def build_model(config: ModelConfig, processor: Processor, kosmos2_config: dict | None = None) -> MobileVLA:
    """A :class:`MobileVLA` for ``config`` whose discrete-action centroids follow ``processor``."""
    model = MobileVLA(config, processor.vocab_size, processor.action_dim, kosmos2_config=kosmos2_config)
    if processor.config.action_stats is not None:
        physical = CLASS_DIRECTIONS[:, : processor.action_dim] * TELEOP_SPEED
        model.set_class_centroids(processor.normalize_actions(physical))
    return model


def save_checkpoint(
    directory: str | Path,
    model: MobileVLA,
    config: Any,
    processor: Processor,
    state: dict[str, Any] | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write the checkpoint directory atomically (replacing an existing one). Returns its path.

    ``config``: the training configuration (a dataclass or a dict with at least ``model`` and
    ``processor``). ``extra_files`` maps a file name inside the checkpoint to a file to move
    there (e.g. the Lightning state for resuming). The files are written and fsynced in a hidden
    version directory, then published by :func:`publish_directory` (one rename).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    step = int((state or {}).get("step", 0))
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.step-{step:07d}.", dir=directory.parent))
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        payload = dict(config) if isinstance(config, dict) else to_dict(config)
        payload["kosmos2_config"] = model.backbone.kosmos.config.to_dict()
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2, default=json_default))
        processor.save(tmp)
        (tmp / STATE_FILE).write_text(json.dumps(state or {}, indent=2, default=json_default))
        for name, src in (extra_files or {}).items():
            shutil.move(str(src), tmp / name)
        publish_directory(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def publish_directory(version: Path, link: Path) -> Path:
    """Make ``link`` (a symlink) point at the finished directory ``version`` in one rename.

    ``version`` must be a sibling of ``link``. Every file under it is fsynced first, so after
    a crash ``link`` names either the previous complete version or this one, and ``link`` is
    always a loadable directory. The previous version and versions of killed writers (hidden
    ``.<name>.*`` siblings nothing points to) are removed afterwards.
    """
    version, link = Path(version), Path(link)
    for file in sorted(version.rglob("*")):
        if file.is_file():
            fsync_file(file)
    for d in [*sorted(p for p in version.rglob("*") if p.is_dir()), version]:
        fsync_dir(d)
    if link.exists() and not link.is_symlink():  # a plain directory written by an older version
        os.replace(link, link.with_name(f".{link.name}.legacy-{os.getpid()}"))
    pointer = link.with_name(f".{link.name}.link-{os.getpid()}")
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    os.symlink(version.name, pointer)
    os.replace(pointer, link)  # the one step that publishes
    fsync_dir(link.parent)
    for stale in link.parent.glob(f".{link.name}.*"):
        if stale.name != version.name and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
    return link


def read_config(directory: str | Path) -> tuple[dict[str, Any], dict | None]:
    """``(training configuration dict, Kosmos-2 architecture dict)`` from ``config.json``."""
    file = Path(directory) / CONFIG_FILE
    if not file.is_file():
        raise MobileVLAError(f"{file}: not found (is {directory} a checkpoint directory?)")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise MobileVLAError(f"{file}: invalid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise MobileVLAError(f"{file}: expected a JSON object with a 'model' section")
    kosmos2 = data.pop("kosmos2_config", None)
    if isinstance(data.get("processor"), dict):
        data["processor"].pop("action_stats", None)  # the processor's own file is the source of truth
    return data, kosmos2


def read_state(directory: str | Path) -> dict[str, Any]:
    file = Path(directory) / STATE_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[MobileVLA, dict[str, Any], Processor]:
    """Rebuild ``(model in eval mode, configuration dict, processor)``; never downloads, never unpickles."""
    directory = Path(directory)
    config, kosmos2 = read_config(directory)
    processor = Processor.load(directory)
    model = build_model(from_dict(ModelConfig, config["model"], "model"), processor, kosmos2_config=kosmos2)
    file = directory / WEIGHTS_FILE
    if not file.is_file():
        raise MobileVLAError(f"{file}: weights not found")
    weights = load_file(str(file))
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)
        raise MobileVLAError(f"{file}: weights do not match the configured model ({first})") from None
    if missing or unexpected:
        raise MobileVLAError(
            f"{file}: weights do not match the configured model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model.to(device).eval(), config, processor


def average_checkpoints(sources: list[str | Path], directory: str | Path) -> Path:
    """Write the uniform average of ``sources``' weights as a checkpoint at ``directory``.

    Averaging the weights of snapshots along one training run (SWA, Izmailov et al., 2018;
    "model soups", Wortsman et al., 2022) lands in a flatter region than any one snapshot; the
    demo averages its DAgger rounds' checkpoints, which continue one another from the same
    processor. Every source must share the model configuration and the processor (image
    transform, tokenizer, action statistics): weights trained for other action statistics
    predict other units, so averaging them is an error naming the files. ``sources`` are in
    training order: the last one's processor, whose instruction words seen so far include every
    earlier round's, is the average's, as are its configuration and integer buffers (e.g. a
    norm's batch counter). The write is atomic (:func:`save_checkpoint`);
    ``trainer_state.json`` records ``averaged_from`` and the last source's step.
    """
    sources = [Path(s) for s in sources]
    if not sources:
        raise MobileVLAError("average_checkpoints: no checkpoints to average")
    model, config, processor = load_checkpoint(sources[-1])
    for source in sources[:-1]:
        other, _ = read_config(source)
        if other.get("model") != config.get("model"):
            raise MobileVLAError(f"{source}: its model configuration differs from {sources[-1]}'s; "
                                 "only checkpoints of one model can be averaged")
        earlier = Processor.load(source)
        if _processor_identity(earlier) != _processor_identity(processor):
            raise MobileVLAError(f"{source}: its processor (image transform, tokenizer or action statistics) "
                                 f"differs from {sources[-1]}'s; only checkpoints of one processor can be averaged")
        # A later round may have seen more instruction words (known_tokens grows), never fewer.
        if not set(earlier.config.known_tokens or ()) <= set(processor.config.known_tokens or ()):
            raise MobileVLAError(f"{source}: it knows instruction tokens {sources[-1]} does not; "
                                 "list the checkpoints in training order")
    state = model.state_dict()
    total = {k: v.detach().double().clone() if v.is_floating_point() else v for k, v in state.items()}
    for source in sources[:-1]:
        weights = load_file(str(source / WEIGHTS_FILE))
        for key, value in total.items():
            if not value.is_floating_point():
                continue
            if key not in weights or weights[key].shape != value.shape:
                raise MobileVLAError(f"{source / WEIGHTS_FILE}: weight {key!r} missing or of another shape "
                                     f"(expected {tuple(value.shape)})")
            value += weights[key].double()
    model.load_state_dict({k: (v / len(sources)).to(state[k].dtype) if v.is_floating_point() else v
                           for k, v in total.items()})
    last = read_state(sources[-1])
    return save_checkpoint(directory, model, config, processor, {
        "step": last.get("step", 0), "epoch": last.get("epoch", 0), "metrics": {},
        "averaged_from": [str(s) for s in sources]})


def _processor_identity(processor: Processor) -> tuple[dict[str, Any], dict[str, int]]:
    """What must agree for two checkpoints' weights to mean the same: the processor's settings
    and statistics (all but the instruction words seen so far) and the tokenizer's vocabulary."""
    settings = dataclasses.asdict(processor.config)
    settings.pop("known_tokens", None)
    return settings, processor.tokenizer.get_vocab()


def default_action_stats(processor: Processor, speed: float = TELEOP_SPEED) -> None:
    """Fit ±``speed`` statistics (the teleop range) on ``processor`` when no episodes are at hand."""
    corners = np.array([[-speed, -speed, 0.0], [speed, speed, 0.0], [0.0, 0.0, 0.0]], np.float32)
    processor.fit_action_stats(corners)
