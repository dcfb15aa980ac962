"""The processor: image transform + tokenizer + action normalisation, as one object.

The same object (saved inside every checkpoint) is used by training, evaluation and
serving, so the three cannot disagree on channel order, image size, normalisation,
tokenization or action scaling.

Token layout built by :meth:`Processor.tokenize` for each instruction (right-padded to a
fixed length ``L`` so that training and serving see identical sequences)::

    [<s>, <image>, <unk> x num_image_tokens, </image>, prompt + instruction, <action> x K, <pad> ...]

``image_embeds_position_mask`` is 1 exactly on the ``num_image_tokens`` latent slots;
``action_token_mask`` is 1 on the K action slots whose hidden states feed the action head.

torch is imported only by the methods that return tensors: the numpy paths
(:meth:`Processor.pixel_values_np`, :meth:`Processor.token_arrays`, actions as arrays) serve a
policy backend that runs without torch (ONNX Runtime).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from mobile_vla.config import from_dict
from mobile_vla.errors import MobileVLAError
from mobile_vla.vocab.instructions import SIDES, resolve_no_side

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PROCESSOR_FILE = "processor.json"
TOKENIZER_DIR = "tokenizer"
_TEXT_IDS_MEMO = 1 << 16  # remembered texts per processor (filler edits of the training sentences: a few thousand)


@dataclasses.dataclass
class ActionStats:
    """Per-dimension statistics of the training split's actions (physical units)."""

    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]

    @classmethod
    def fit(cls, actions: np.ndarray) -> ActionStats:
        """``actions``: ``(N, D)`` in physical units."""
        a = np.asarray(actions, dtype=np.float64)
        return cls(
            mean=a.mean(0).tolist(), std=a.std(0).tolist(), min=a.min(0).tolist(), max=a.max(0).tolist()
        )


@dataclasses.dataclass
class ProcessorConfig:
    image_size: int = 112
    image_mean: list[float] = dataclasses.field(default_factory=lambda: list(CLIP_MEAN))
    image_std: list[float] = dataclasses.field(default_factory=lambda: list(CLIP_STD))
    num_image_tokens: int = 16  # Kosmos-2 latent_query_num (64 for the full model)
    num_action_tokens: int = 1
    prompt_prefix: str = "<grounding>An image of a robot "
    max_instruction_tokens: int = 24
    tokenizer: str = "tiny"  # "tiny" (built offline) or a local path / hub id of a Kosmos-2 tokenizer
    action_dims: list[int] = dataclasses.field(default_factory=lambda: [0, 1])  # linear_x, linear_y
    action_norm: str = "min_max"  # min_max: [min, max] -> [-1/margin, 1/margin]; mean_std
    action_margin: float = 1.1  # headroom so a Tanh head can reach the extremes
    action_stats: ActionStats | None = None
    # "drop": an instruction token training never saw (not in known_tokens) is left out. A model
    # whose text embeddings were learnt from scratch (the tiny preset) has nothing but noise in
    # an unseen token's embedding; a pretrained one ("keep") knows the word.
    unseen_tokens: str = "keep"
    known_tokens: list[int] | None = None  # the instruction tokens training saw (fit_vocabulary)
    # None: an instruction that names no side ("reach the cup") is read as written. "left" or
    # "right": it is read as the task's canonical instruction for that side — a convention ("no
    # side named: pass on the right"), resolved before the model so that it reads one sentence
    # it knows well; training checks that such episodes' labels follow the same route.
    no_side_route: str | None = None


UNSEEN_TOKENS = ("keep", "drop")
NO_SIDE_ROUTES = (None, *SIDES)


class Processor:
    """Turns robot observations and instructions into model inputs, and model outputs into commands."""

    def __init__(self, config: ProcessorConfig, tokenizer=None):
        self.config = config
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer)
        for tok in ("<image>", "</image>", "<action>"):
            if tok not in self.tokenizer.get_vocab():
                self.tokenizer.add_special_tokens({"additional_special_tokens": [tok]})
        vocab = self.tokenizer.get_vocab()
        self.bos_id = self.tokenizer.bos_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.unk_id = self.tokenizer.unk_token_id
        self.boi_id = vocab["<image>"]
        self.eoi_id = vocab["</image>"]
        self.action_token_id = vocab["<action>"]
        if self.pad_id != 1:
            raise MobileVLAError(
                f"tokenizer {config.tokenizer!r}: pad token id is {self.pad_id}; Kosmos-2 needs pad id 1"
            )
        if config.unseen_tokens not in UNSEEN_TOKENS:
            raise MobileVLAError(f"processor.unseen_tokens: expected one of {list(UNSEEN_TOKENS)}, "
                                 f"got {config.unseen_tokens!r}")
        if config.no_side_route not in NO_SIDE_ROUTES:
            raise MobileVLAError(f"processor.no_side_route: expected one of {list(NO_SIDE_ROUTES)}, "
                                 f"got {config.no_side_route!r}")
        self._known = set(config.known_tokens) if config.known_tokens is not None else None
        self._text_ids: dict[str, tuple[int, ...]] = {}
        self._mean = np.asarray(config.image_mean, np.float32).reshape(3, 1, 1)
        self._std = np.asarray(config.image_std, np.float32).reshape(3, 1, 1)

    # ------------------------------------------------------------------ sizes
    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    @property
    def sequence_length(self) -> int:
        c = self.config
        return 3 + c.num_image_tokens + c.max_instruction_tokens + c.num_action_tokens

    @property
    def action_dim(self) -> int:
        return len(self.config.action_dims)

    # ------------------------------------------------------------------ images
    def resize_frame(self, frame: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
        """One frame ``(H, W, 3)`` uint8 in ``channel_order`` → ``(S, S, 3)`` uint8 **RGB**."""
        frame = _check_frame(frame)
        if channel_order not in ("bgr", "rgb"):
            raise MobileVLAError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        s = self.config.image_size
        if frame.shape[:2] != (s, s):
            # Resizing acts on each channel alone, so resize first and swap channels on the small
            # image: identical output, and a 720p channel swap alone costs ~11 ms.
            frame = np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((s, s), Image.BILINEAR))
        if channel_order == "bgr":
            frame = frame[..., ::-1]
        return np.ascontiguousarray(frame)

    def normalize_resized(self, rgb: np.ndarray) -> torch.Tensor:
        """``(..., S, S, 3)`` uint8 RGB (already resized) → ``(..., 3, S, S)`` float32, normalised."""
        import torch

        # One fused scale/shift on a contiguous channels-first copy: ~5x faster than
        # (x / 255 - mean) / std on the permuted view, and the result is contiguous.
        rgb = np.ascontiguousarray(rgb)
        if not rgb.flags.writeable:  # shared decoded frames (data/cache.py): torch wraps writable arrays only
            rgb = rgb.copy()
        x = torch.from_numpy(rgb).movedim(-1, -3).contiguous().float()
        scale = torch.from_numpy(1.0 / (255.0 * self._std))
        shift = torch.from_numpy(-self._mean / self._std)
        return x.mul_(scale).add_(shift)

    def process_images(self, frames: np.ndarray, channel_order: str = "bgr") -> torch.Tensor:
        """Frames ``(..., H, W, 3)`` uint8 of any size → ``(..., 3, S, S)`` float32 pixel values."""
        frames = np.asarray(frames)
        lead = frames.shape[:-3]
        flat = frames.reshape(-1, *frames.shape[-3:])
        resized = np.stack([self.resize_frame(f, channel_order) for f in flat])
        return self.normalize_resized(resized).reshape(*lead, 3, self.config.image_size, self.config.image_size)

    def pixel_values_np(self, frames: np.ndarray, channel_order: str = "bgr") -> np.ndarray:
        """:meth:`process_images` in numpy: ``(..., H, W, 3)`` uint8 → ``(..., 3, S, S)`` float32, same values."""
        frames = np.asarray(frames)
        lead = frames.shape[:-3]
        resized = np.stack([self.resize_frame(f, channel_order) for f in frames.reshape(-1, *frames.shape[-3:])])
        return self.normalize_resized_np(resized).reshape(*lead, 3, self.config.image_size, self.config.image_size)

    def normalize_resized_np(self, rgb: np.ndarray) -> np.ndarray:
        """:meth:`normalize_resized` in numpy: ``(B, S, S, 3)`` uint8 RGB → ``(B, 3, S, S)`` float32."""
        x = np.ascontiguousarray(np.moveaxis(rgb, -1, -3)).astype(np.float32)
        x *= (1.0 / (255.0 * self._std)).astype(np.float32)
        x += (-self._mean / self._std).astype(np.float32)
        return x

    # ------------------------------------------------------------------ text
    def tokenize(self, instructions: list[str] | str) -> dict[str, torch.Tensor]:
        """Instructions → the full multimodal token layout (see module docstring).

        Returns:
            ``input_ids``, ``attention_mask``, ``image_embeds_position_mask``, ``action_token_mask``:
            each ``(B, L)`` int64 tensors with ``L = sequence_length``.
        """
        import torch

        return {k: torch.from_numpy(v) for k, v in self.token_arrays(instructions).items()}

    def token_arrays(self, instructions: list[str] | str) -> dict[str, np.ndarray]:
        """:meth:`tokenize` as ``(B, L)`` int64 numpy arrays."""
        if isinstance(instructions, str):
            instructions = [instructions]
        c = self.config
        rows = []
        for text in instructions:
            if not isinstance(text, str) or not text.strip():
                raise MobileVLAError(f"instruction must be a non-empty string, got {text!r}")
            words = self.text_ids(text)
            if c.unseen_tokens == "drop" and self._known is not None:
                words = [w for w in words if w in self._known]
            if len(words) > c.max_instruction_tokens:
                log.warning(
                    "instruction truncated to %d tokens: %r", c.max_instruction_tokens, text
                )
                words = words[: c.max_instruction_tokens]
            ids = [self.bos_id, self.boi_id] + [self.unk_id] * c.num_image_tokens + [self.eoi_id]
            ids += words + [self.action_token_id] * c.num_action_tokens
            rows.append(ids)
        L = self.sequence_length
        input_ids = np.full((len(rows), L), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), L), dtype=np.int64)
        for i, ids in enumerate(rows):
            input_ids[i, : len(ids)] = ids
            attention_mask[i, : len(ids)] = 1
        image_mask = np.zeros_like(attention_mask)
        image_mask[:, 2 : 2 + c.num_image_tokens] = 1
        action_mask = (input_ids == self.action_token_id).astype(np.int64)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "image_embeds_position_mask": image_mask,
            "action_token_mask": action_mask,
        }

    def text_ids(self, text: str) -> list[int]:
        """The prompt and ``text`` as token ids ``(n,)``, before truncation or dropping.

        Remembered per text: training asks again for every item whose instruction is a filler
        edit, and a tokenizer call costs more than the rest of the item's labels.
        """
        ids = self._text_ids.get(text)
        if ids is None:
            if len(self._text_ids) >= _TEXT_IDS_MEMO:
                self._text_ids.clear()
            ids = self._text_ids[text] = tuple(self.tokenizer(
                self.config.prompt_prefix + self.read_as(text).strip(), add_special_tokens=False)["input_ids"])
        return list(ids)

    def read_as(self, text: str) -> str:
        """The sentence the model is given for ``text``: ``text`` itself, or, when
        ``no_side_route`` is set and ``text`` contains no side word, the canonical instruction
        of its task (cup or basket) for that side."""
        return resolve_no_side(text, self.config.no_side_route)

    def fit_vocabulary(self, instructions: Iterable[str]) -> bool:
        """Add every token of ``instructions`` (prompt included) to ``known_tokens``.

        Training calls it with everything its items can say, before it tokenizes them; what a
        checkpoint already knew stays known (a fine-tune only adds words). Returns whether
        tokenizing can now give other ids than before (the caller then tokenizes again).
        """
        known = set(self.config.known_tokens or ())
        for text in instructions:
            known.update(self.text_ids(text))
        changed = self._known != known
        self.config.known_tokens = sorted(known)
        self._known = known
        return changed

    # ------------------------------------------------------------------ actions
    def fit_action_stats(self, actions: np.ndarray) -> ActionStats:
        """Fit normalisation on training-split actions ``(N, 3)`` (all recorded dims)."""
        a = np.asarray(actions, np.float64)[:, self.config.action_dims]
        self.config.action_stats = ActionStats.fit(a)
        return self.config.action_stats

    def _scale_shift(self, like):
        st = self.config.action_stats
        if st is None:
            raise MobileVLAError("processor has no action statistics; fit them on the training split first")
        if self.config.action_norm == "min_max":
            lo, hi = np.asarray(st.min), np.asarray(st.max)
            center = (hi + lo) / 2
            half = np.maximum((hi - lo) / 2, 1e-6) * self.config.action_margin
        elif self.config.action_norm == "mean_std":
            center, half = np.asarray(st.mean), np.maximum(np.asarray(st.std), 1e-6)
        else:
            raise MobileVLAError(f"action_norm must be 'min_max' or 'mean_std', got {self.config.action_norm!r}")
        if not isinstance(like, (np.ndarray, np.generic, float, int)):  # a torch tensor
            import torch

            return (torch.as_tensor(center, dtype=like.dtype, device=like.device),
                    torch.as_tensor(half, dtype=like.dtype, device=like.device))
        return center.astype(np.float32), half.astype(np.float32)

    def select_actions(self, actions: np.ndarray) -> np.ndarray:
        """Recorded ``(..., 3)`` → the model's action dims ``(..., D)``."""
        return np.asarray(actions)[..., self.config.action_dims]

    def normalize_actions(self, actions):
        """Physical ``(..., D)`` → normalised ``(..., D)`` (numpy or torch)."""
        center, half = self._scale_shift(actions)
        return (actions - center) / half

    def unnormalize_actions(self, actions):
        """Normalised ``(..., D)`` → physical units ``(..., D)`` (numpy or torch)."""
        center, half = self._scale_shift(actions)
        return actions * half + center

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / PROCESSOR_FILE).write_text(json.dumps(dataclasses.asdict(self.config), indent=2))
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)

    @classmethod
    def load(cls, directory: str | Path) -> Processor:
        directory = Path(directory)
        file = directory / PROCESSOR_FILE
        if not file.is_file():
            raise MobileVLAError(f"{file}: processor file not found (is {directory} a checkpoint?)")
        try:
            data: dict[str, Any] = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise MobileVLAError(f"{file}: invalid JSON ({exc})") from None
        config = from_dict(ProcessorConfig, data, "processor")
        tokenizer = load_tokenizer(str(directory / TOKENIZER_DIR))
        return cls(config, tokenizer)

    def describe(self) -> str:
        return (f"tokenizer={self.config.tokenizer} (vocab {self.vocab_size}), "
                f"image_size={self.config.image_size}, sequence_length={self.sequence_length}")


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
        raise MobileVLAError(f"image must be an (H, W, 3) array, got shape {getattr(frame, 'shape', None)}")
    if frame.dtype != np.uint8:
        raise MobileVLAError(f"image must be uint8, got {frame.dtype}")
    return frame


def load_tokenizer(name: str):
    """``"tiny"`` → the offline word-level tokenizer; otherwise a local dir or hub id (Kosmos-2's)."""
    if name == "tiny":
        from mobile_vla.processing.tokenizer import build_tiny_tokenizer

        return build_tiny_tokenizer()
    from mobile_vla.hub import resolve_pretrained

    def fail(reason: str) -> MobileVLAError:
        return MobileVLAError(
            f"cannot load tokenizer {name!r}: {reason}. Offline? Download "
            "microsoft/kosmos-2-patch14-224 once on a connected machine and pass its local directory."
        )

    source = resolve_pretrained(name)  # a local copy first; no minute of retries when offline
    if source is None:
        raise fail("no local copy and the model hub is unreachable or offline mode is on")
    from transformers import AutoTokenizer  # after the check: importing it alone takes seconds

    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise fail(exc.__class__.__name__) from None
