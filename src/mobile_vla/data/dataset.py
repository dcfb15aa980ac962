"""``MobileVLAH5Dataset``: windows of frames with chunked action targets and real tokens.

Each item is one window of ``W = window_size`` consecutive frames of one episode. For every
frame ``t`` of the window the target is the chunk of the next ``N = fwd_pred_next_n``
recorded actions ``actions[t : t + N]``, with a mask where the chunk runs past the episode
end. Item keys (``L = processor.sequence_length``, ``S = processor.config.image_size``,
``D = processor.action_dim``)::

    pixel_values        float32 (W, 3, S, S)  processor-normalised RGB
    frame_mask          bool    (W,)          False on padding (episode shorter than W)
    step_index          long    (W,)          each frame's index in its episode (the control step)
    odometry            float32 (W, 2)        displacement (m) since the episode began (0 on padding)
    input_ids, attention_mask, image_embeds_position_mask, action_token_mask   long (L,)
    actions             float32 (W, N, D)     normalised chunk targets (0 where masked)
    action_mask         bool    (W, N)
    cf_input_ids, cf_attention_mask, cf_image_embeds_position_mask, cf_action_token_mask  long (L,)
    cf_actions          float32 (W, N, D)     normalised counterfactual targets
    cf_action_mask      bool    (W, N)        all False without counterfactual labels
    direction           long    ()            instructed side: 0 left, 1 right, 2 none
    class_labels        long    (W, N)        only with discrete_labels; -100 where masked
    instruction, episode_id, source   str  (source: the data source's name, "" when not given)

Tokens come from the processor at construction (each distinct instruction tokenized once);
there is no fallback: without a processor the dataset refuses to exist. Frames are decoded
and resized once per episode (through the disk cache for large files, see
:mod:`mobile_vla.data.cache`) and kept in memory as ``(T, S, S, 3)`` uint8 RGB.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mobile_vla.data.augment import color_jitter, mirror_actions, mirror_frames, mirror_labels
from mobile_vla.data.cache import load_resized_frames
from mobile_vla.data.formats import decode_frames, list_episodes, read_labels
from mobile_vla.data.odometry import episode_odometry
from mobile_vla.data.scene_labels import mirror_scene, scene_labels
from mobile_vla.errors import MobileVLAError
from mobile_vla.vocab import batch as keys
from mobile_vla.vocab.actions import IGNORE_INDEX, action_class
from mobile_vla.vocab.batch import DIRECTION_IDS, DIRECTION_NONE, TOKEN_KEYS
from mobile_vla.vocab.instructions import mirror_instruction, other_side
from mobile_vla.vocab.noise import FILLER_WORDS, perturb_instruction
from mobile_vla.vocab.scene import SCENE_LABELS, SCENE_SCALE

log = logging.getLogger(__name__)

_logged_processors: set[str] = set()  # log the tokenizer/image size once per process


@dataclasses.dataclass
class EpisodeRecord:
    """What the dataset keeps of an episode besides its frames (read without decoding images)."""

    path: Path
    episode_id: str
    instruction: str
    side: str | None
    actions: np.ndarray  # (T, 3) physical
    counterfactual: np.ndarray | None  # (T, 3) physical, or None
    image_shape: tuple[int, int, int]
    scene: np.ndarray | None = None  # (T, 4) robot-frame cup/obstacle positions (simulator files)
    odometry: np.ndarray | None = None  # (T, 2) displacement since the episode began (data.odometry)
    source: str = ""  # the data source it came from (mobile_vla.data.sources)
    # For an instruction that names no side: the route its labels follow ("view", or a fixed
    # convention "left" / "right", the expert's no_side_route); None when the side is named.
    no_side_route: str | None = None

    @property
    def mirrorable(self) -> bool:
        """False for a no-side episode whose route was a fixed convention ("pass on the right"):
        its mirror would show the other side under the same sentence."""
        return self.no_side_route in (None, "view")

    @property
    def num_frames(self) -> int:
        return int(self.actions.shape[0])


def resolve_episodes(episodes: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """A folder, a file, or a list of files → episode paths."""
    if isinstance(episodes, (str, os.PathLike)):
        paths = list_episodes(episodes)
    else:
        paths = [Path(p) for p in episodes]
    if not paths:
        raise MobileVLAError(f"no episode files (*.h5) in {episodes!r}")
    return paths


def read_records(paths: Sequence[Path], sources: Sequence[str] | None = None) -> list[EpisodeRecord]:
    """Validate every episode (raises ``EpisodeError`` naming the file) and keep its labels.

    ``sources``: the data source name of each path (default ``""``).
    """
    records = []
    for i, path in enumerate(paths):
        ep = read_labels(path)
        records.append(
            EpisodeRecord(
                path=path,
                episode_id=ep.episode_id,
                instruction=ep.instruction,
                side=ep.side,
                actions=ep.actions,
                counterfactual=ep.counterfactual_actions,
                image_shape=ep.image_shape,
                scene=scene_labels(ep.attrs, ep.num_frames),
                odometry=episode_odometry(ep.attrs, ep.actions),
                source=sources[i] if sources is not None else "",
                no_side_route=None if ep.side is not None else str(ep.attrs.get("no_side_route", "view")),
            )
        )
    return records


def _check_no_side_routes(records: Sequence[EpisodeRecord], route: str | None) -> None:
    """With ``processor.no_side_route`` set, a no-side sentence reads as that side's instruction:
    episodes whose no-side labels follow another route would teach the opposite."""
    if route is None:
        return
    for rec in records:
        if rec.side is None and rec.no_side_route != route:
            raise MobileVLAError(
                f"{rec.path}: instruction {rec.instruction!r} names no side and its labels follow the "
                f"{rec.no_side_route!r} route, but processor.no_side_route={route!r} reads it as the {route} "
                f"side's instruction; collect with --no-side-route {route} (demo: expert.no_side_route={route})")


def action_stats(
    episodes: Sequence[str | os.PathLike] | str | os.PathLike, include_mirrored: bool = False
) -> np.ndarray:
    """All recorded actions ``(sum T, 3)`` of ``episodes`` for ``processor.fit_action_stats``.

    Pass the *training split* only. ``include_mirrored`` appends the mirrored actions, matching
    what a dataset with mirror augmentation trains on.
    """
    actions = np.concatenate([r.actions for r in read_records(resolve_episodes(episodes))])
    return np.concatenate([actions, mirror_actions(actions)]) if include_mirrored else actions


class MobileVLAH5Dataset(Dataset):
    """Windows of ``window_size`` frames with ``fwd_pred_next_n``-action chunks (see module doc).

    Args:
        episodes: a folder, a file, or a list of episode files.
        processor: the :class:`~mobile_vla.processing.processor.Processor` (required; its action
            statistics must be fitted before items are read).
        window_size: frames per window ``W``.
        fwd_pred_next_n: actions per chunk ``N``.
        window_stride: step between window starts within an episode.
        mirror_prob: probability that an item is mirrored (image, instruction, actions).
        color_jitter: strength of brightness/contrast/saturation jitter (0 = off).
        instruction_noise: probability that an item's instruction gets meaning-preserving filler
            edits (:func:`~mobile_vla.vocab.noise.perturb_instruction`; 0 = off).
        discrete_labels: add ``class_labels`` (the 9 teleop classes).
        cache: use the on-disk cache of resized frames for large files.
        seed: seeds the per-item augmentation (with :meth:`set_epoch` and the index).
        sources: the data source name of each episode (a list of files only); items carry it.
    """

    def __init__(
        self,
        episodes: Sequence[str | os.PathLike] | str | os.PathLike,
        processor,
        window_size: int = 8,
        fwd_pred_next_n: int = 10,
        window_stride: int = 1,
        mirror_prob: float = 0.0,
        color_jitter: float = 0.0,
        instruction_noise: float = 0.0,
        discrete_labels: bool = False,
        cache: bool = True,
        seed: int = 0,
        sources: Sequence[str] | None = None,
    ):
        if processor is None or getattr(processor, "tokenizer", None) is None:
            raise MobileVLAError(
                "MobileVLAH5Dataset needs a Processor with a tokenizer (items carry real tokens; "
                "there is no dummy-token fallback)"
            )
        for name, value in (("window_size", window_size), ("fwd_pred_next_n", fwd_pred_next_n),
                            ("window_stride", window_stride)):
            if int(value) < 1:
                raise MobileVLAError(f"{name} must be >= 1, got {value}")
        if not 0.0 <= mirror_prob <= 1.0:
            raise MobileVLAError(f"mirror_prob must be in [0, 1], got {mirror_prob}")
        if not 0.0 <= color_jitter < 1.0:
            raise MobileVLAError(f"color_jitter must be in [0, 1), got {color_jitter}")
        if not 0.0 <= instruction_noise <= 1.0:
            raise MobileVLAError(f"instruction_noise must be in [0, 1], got {instruction_noise}")
        self.processor = processor
        self.window_size = int(window_size)
        self.fwd_pred_next_n = int(fwd_pred_next_n)
        self.window_stride = int(window_stride)
        self.mirror_prob = float(mirror_prob)
        self.color_jitter = float(color_jitter)
        self.instruction_noise = float(instruction_noise)
        self.discrete_labels = bool(discrete_labels)
        self.cache = bool(cache)
        self.seed = int(seed)
        self._epoch = 0

        paths = resolve_episodes(episodes)
        if sources is not None and len(sources) != len(paths):
            raise MobileVLAError(f"sources: {len(sources)} names for {len(paths)} episodes")
        self.records = read_records(paths, sources)
        _check_no_side_routes(self.records, processor.config.no_side_route)
        # (episode index, window start) for every window.
        self._windows = [
            (i, start)
            for i, rec in enumerate(self.records)
            for start in range(0, max(rec.num_frames - self.window_size, 0) + 1, self.window_stride)
        ]
        self._frames: dict[int, np.ndarray] = {}
        self._tokens = self._tokenize_all()
        self._log_setup()

    # ------------------------------------------------------------------ setup
    def instruction_texts(self) -> list[str]:
        """Every text an item can give the model: each instruction, its mirror (the counterfactual
        branch reads it) and, with instruction noise, the filler words; for ``fit_vocabulary``."""
        texts = self._recorded_texts()
        if self.instruction_noise > 0:
            texts |= {w for words in FILLER_WORDS.values() for w in words}
        return sorted(texts)

    def _recorded_texts(self) -> set[str]:
        """Each recorded instruction and its mirror (the counterfactual branch reads it)."""
        return {t for r in self.records for t in (r.instruction, mirror_instruction(r.instruction))}

    def retokenize(self) -> None:
        """Tokenize the instructions again, after the processor's vocabulary changed."""
        self._tokens = self._tokenize_all()

    def _tokenize_all(self) -> dict[str, dict[str, torch.Tensor]]:
        """Tokenize each distinct instruction (and its mirror) once: text → ``{key: (L,)}``."""
        texts = sorted(self._recorded_texts())
        batch = self.processor.tokenize(texts)
        cfg = self.processor.config
        tokens = {}
        for i, text in enumerate(texts):
            row = {k: batch[k][i].clone() for k in TOKEN_KEYS}
            # [BOS, <image>, latents, </image>] precede the text; action tokens follow it.
            length = int(row["attention_mask"].sum())
            text_ids = row["input_ids"][3 + cfg.num_image_tokens : length - cfg.num_action_tokens]
            if len(text_ids) == 0:
                raise MobileVLAError(f"instruction {text!r} produced no text tokens with {self.processor.describe()}")
            own_ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            if all(t == self.processor.unk_id for t in own_ids):
                log.warning("instruction %r maps to <unk> tokens only with tokenizer %r", text, cfg.tokenizer)
            tokens[text] = row
        return tokens

    def _log_setup(self) -> None:
        desc = self.processor.describe()
        if desc not in _logged_processors:
            _logged_processors.add(desc)
            log.info("MobileVLAH5Dataset: %s", desc)
        log.debug("MobileVLAH5Dataset: %d episodes, %d windows (W=%d, N=%d)",
                  len(self.records), len(self._windows), self.window_size, self.fwd_pred_next_n)

    # ------------------------------------------------------------------ public helpers
    def __len__(self) -> int:
        return len(self._windows)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draw (items stay deterministic for a given seed and epoch)."""
        self._epoch = int(epoch)

    @property
    def episode_paths(self) -> list[Path]:
        return [r.path for r in self.records]

    def window_frames(self) -> list[tuple[int, int]]:
        """``(episode index, newest frame)`` of every window ``(len(self),)``: the frame whose
        chunk the window's last position predicts, e.g. to join per-frame episode facts."""
        return [(i, start + self.window_size - 1) for i, start in self._windows]

    def window_sources(self) -> list[str]:
        """The data source name of every window ``(len(self),)``, e.g. for a weighted sampler."""
        return [self.records[i].source for i, _ in self._windows]

    def all_actions(self, include_mirrored: bool | None = None) -> np.ndarray:
        """All recorded actions ``(sum T, 3)``, for ``processor.fit_action_stats`` on a training set.

        ``include_mirrored`` defaults to whether this dataset mirrors (``mirror_prob > 0``).
        """
        actions = np.concatenate([r.actions for r in self.records])
        if include_mirrored if include_mirrored is not None else self.mirror_prob > 0:
            actions = np.concatenate([actions, mirror_actions(actions)])
        return actions

    def frames(self, episode_index: int) -> np.ndarray:
        """Resized RGB frames ``(T, S, S, 3)`` uint8 of one episode (decoded once, then in memory)."""
        frames = self._frames.get(episode_index)
        if frames is None:
            rec = self.records[episode_index]
            size = self.processor.config.image_size
            frames = load_resized_frames(
                rec.path,
                transform=lambda bgr: self.processor.resize_frame(bgr, channel_order="bgr"),
                transform_id=f"rgb{size}",
                image_shape=rec.image_shape,
                image_size=size,
                use_disk=self.cache,
                decode=decode_frames,
            )
            if len(frames) != rec.num_frames:
                raise MobileVLAError(f"{rec.path}: decoded {len(frames)} frames, expected {rec.num_frames}")
            self._frames[episode_index] = frames
        return frames

    def preload(self) -> None:
        """Decode every episode now (e.g. before forking DataLoader workers, so they share memory)."""
        for i in range(len(self.records)):
            self.frames(i)

    # ------------------------------------------------------------------ items
    def _chunks(self, actions: np.ndarray, start: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunks ``(W, N, 3)`` physical and mask ``(W, N)`` for the window at ``start``."""
        W, N, T = self.window_size, self.fwd_pred_next_n, len(actions)
        idx = start + np.arange(W)[:, None] + np.arange(N)[None, :]
        mask = (idx < T) & (np.arange(W) < n_frames)[:, None]
        chunks = actions[np.minimum(idx, T - 1)]
        chunks[~mask] = 0.0
        return chunks, mask

    def _targets(self, chunks: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        """Physical chunks ``(W, N, 3)`` → normalised targets ``(W, N, D)``, 0 where masked."""
        p = self.processor
        targets = p.normalize_actions(p.select_actions(chunks)).astype(np.float32)
        targets[~mask] = 0.0
        return torch.from_numpy(targets)

    def _odometry(self, rec: EpisodeRecord, start: int) -> np.ndarray:
        """``(W, 2)`` float32 odometry of the window at ``start`` (a copy; 0 past the episode's end)."""
        out = np.zeros((self.window_size, 2), np.float32)
        if rec.odometry is not None:
            part = rec.odometry[start : start + self.window_size]
            out[: len(part)] = part
        return out

    def __getitem__(self, index: int) -> dict:
        ep_index, start = self._windows[index]
        rec = self.records[ep_index]
        W, S = self.window_size, self.processor.config.image_size
        rng = np.random.default_rng([self.seed, self._epoch, index])

        frames = self.frames(ep_index)[start : start + W]
        instruction, actions, cf = rec.instruction, rec.actions, rec.counterfactual
        # A no-side sentence the processor reads as its convention's side carries that side's
        # direction label too: the model sees the same tokens as for that side's instruction.
        side = rec.side or self.processor.config.no_side_route
        scene, odometry = rec.scene, self._odometry(rec, start)
        mirrored = self.mirror_prob > 0 and rng.random() < self.mirror_prob and rec.mirrorable
        if mirrored:
            instruction, actions, cf = mirror_labels(instruction, actions, cf)
            side = other_side(side) if side in DIRECTION_IDS else side
            scene = mirror_scene(scene)
            odometry[:, 1] *= -1  # the mirrored world: left is right
        frames = color_jitter(frames, self.color_jitter, rng)
        # Drawn only when on, so that datasets without noise keep their random stream.
        if self.instruction_noise > 0 and rng.random() < self.instruction_noise:
            instruction = self._perturbed(instruction, rng)

        n = len(frames)
        pixel_values = torch.zeros((W, 3, S, S), dtype=torch.float32)
        normalized = self.processor.normalize_resized(frames)  # (n, 3, S, S)
        # Flipping the normalised tensor is ~10x cheaper than flipping uint8 HWC frames.
        pixel_values[:n] = mirror_frames(normalized) if mirrored else normalized
        chunks, mask = self._chunks(actions, start, n)
        if cf is not None:
            cf_chunks, cf_mask = self._chunks(cf, start, n)
        else:
            cf_chunks, cf_mask = np.zeros_like(chunks), np.zeros_like(mask)

        item = {
            keys.PIXEL_VALUES: pixel_values,
            keys.FRAME_MASK: torch.from_numpy(np.arange(W) < n),
            keys.STEP_INDEX: torch.arange(start, start + W),
            keys.ODOMETRY: torch.from_numpy(odometry),
            **self._tokens_of(instruction),
            keys.ACTIONS: self._targets(chunks, mask),
            keys.ACTION_MASK: torch.from_numpy(mask),
            **{keys.CF_PREFIX + k: v for k, v in self._tokens_of(mirror_instruction(instruction)).items()},
            keys.CF_ACTIONS: self._targets(cf_chunks, cf_mask),
            keys.CF_ACTION_MASK: torch.from_numpy(cf_mask),
            keys.DIRECTION: torch.tensor(DIRECTION_IDS.get(side, DIRECTION_NONE), dtype=torch.long),
            **self._scene(scene, start, n),
            keys.INSTRUCTION: instruction,
            keys.EPISODE_ID: rec.episode_id,
            keys.SOURCE: rec.source,
        }
        if self.discrete_labels:
            labels = action_class(chunks)
            labels[~mask] = IGNORE_INDEX
            item[keys.CLASS_LABELS] = torch.from_numpy(labels)
        return item

    def _perturbed(self, instruction: str, rng: np.random.Generator) -> str:
        """Filler-edited ``instruction``, or ``instruction`` itself when the edit would not fit."""
        noisy = perturb_instruction(instruction, rng)
        c = self.processor.config
        return noisy if len(self.processor.text_ids(noisy)) <= c.max_instruction_tokens else instruction

    def _tokens_of(self, instruction: str) -> dict[str, torch.Tensor]:
        """``{key: (L,)}`` for ``instruction``: cached for recorded ones, tokenized for noisy ones."""
        if instruction in self._tokens:
            return {k: v.clone() for k, v in self._tokens[instruction].items()}
        batch = self.processor.tokenize([instruction])
        return {k: batch[k][0] for k in TOKEN_KEYS}

    def _scene(self, scene: np.ndarray | None, start: int, n: int) -> dict[str, torch.Tensor]:
        """``scene`` ``(W, 4)`` (scaled by :data:`SCENE_SCALE`) and ``scene_mask`` ``(W,)``."""
        W = self.window_size
        out = torch.zeros((W, len(SCENE_LABELS)), dtype=torch.float32)
        mask = torch.zeros(W, dtype=torch.bool)
        if scene is not None:
            out[:n] = torch.from_numpy(scene[start : start + n] / SCENE_SCALE)
            mask[:n] = True
        return {keys.SCENE: out, keys.SCENE_MASK: mask}

    # ------------------------------------------------------------------ batching
    def collater(self, items: list[dict]) -> dict:
        """Stack items into a batch: tensors ``(B, ...)``, strings as lists.

        Token rows are right-padded to the longest (pad id for ``input_ids``, 0 for masks) if
        their lengths differ; with one processor they never do, so the batch tokens equal the
        items' tokens.
        """
        if not items:
            raise MobileVLAError("collater got an empty batch")
        batch: dict = {}
        for key, first in items[0].items():
            values = [item[key] for item in items]
            if not isinstance(first, torch.Tensor):
                batch[key] = values
            elif key.removeprefix(keys.CF_PREFIX) in TOKEN_KEYS:
                batch[key] = _pad_rows(values, self.processor.pad_id if key.endswith("input_ids") else 0)
            else:
                batch[key] = torch.stack(values)
        return batch


def _pad_rows(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    """``(L_i,)`` long rows → ``(B, max L_i)``, right-padded with ``value``."""
    length = max(len(r) for r in rows)
    out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out
