"""The Lightning DataModule: split by scene, fit the processor on the train split, build datasets.

Several data sources (``data.episodes``, :mod:`mobile_vla.data.sources`) are split one by one;
with weights, training windows are drawn by a seeded weighted sampler so that each source
supplies its share of the batches.

The one :class:`Processor` (fitted here, on the TRAIN split's actions only) is handed to both
datasets and saved with every checkpoint, so training and serving cannot disagree.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from mobile_vla.data.dataset import MobileVLAH5Dataset, action_stats, resolve_episodes
from mobile_vla.data.sources import is_weighted, parse_sources, window_weights
from mobile_vla.data.split import split_episodes
from mobile_vla.errors import MobileVLAError
from mobile_vla.model.heads import ACTION_HEADS
from mobile_vla.processing.processor import Processor
from mobile_vla.train.config import TrainConfig
from mobile_vla.train.sampling import ResumableBatchSampler

log = logging.getLogger(__name__)


class MobileVLADataModule(L.LightningDataModule):
    def __init__(self, config: TrainConfig, processor: Processor):
        super().__init__()
        self.config = config
        self.processor = processor
        self.sources = parse_sources(config.data.episodes)
        self.train_paths, self.val_paths, self._source_of = self._split()
        self.train_set: MobileVLAH5Dataset | None = None
        self.val_set: MobileVLAH5Dataset | None = None

    def _split(self):
        d = self.config.data
        train, val, source_of = [], [], {}
        for source in self.sources:
            paths = resolve_episodes(source.path)
            if not paths:
                raise MobileVLAError(f"data.episodes: source {source.name!r} ({source.path}): no episode files found")
            for path in paths:
                if path in source_of:
                    raise MobileVLAError(f"data.episodes: {path} is in both source {source_of[path]!r} "
                                         f"and source {source.name!r}")
                source_of[path] = source.name
            t, v = split_episodes(paths, d.val_fraction, d.split_seed)
            train += t
            val += v
            log.info("split %s: %d train / %d val episodes", source.name, len(t), len(v))
        return sorted(train), sorted(val), source_of

    def fit_processor(self) -> None:
        """Fit action statistics on the training split (mirrored actions too when mirroring)."""
        stats = action_stats(self.train_paths, include_mirrored=self.config.data.mirror_prob > 0)
        self.processor.fit_action_stats(stats)

    def _dataset(self, paths, train: bool) -> MobileVLAH5Dataset:
        d, h = self.config.data, self.config.model.head
        return MobileVLAH5Dataset(
            paths, self.processor, window_size=h.window_size, fwd_pred_next_n=h.fwd_pred_next_n,
            window_stride=d.window_stride, mirror_prob=d.mirror_prob if train else 0.0,
            color_jitter=d.color_jitter if train else 0.0, instruction_noise=d.instruction_noise if train else 0.0,
            discrete_labels=ACTION_HEADS.get(h.type).needs_class_labels,
            cache=d.cache, seed=d.seed, sources=[self._source_of[p] for p in paths],
        )

    def setup(self, stage: str | None = None) -> None:
        if self.processor.config.action_stats is None:
            self.fit_processor()
        if self.train_set is None:
            self.train_set = self._dataset(self.train_paths, train=True)
            if self.processor.config.unseen_tokens == "drop":
                # Before any item is read: the checkpoint then knows what training said to it.
                if self.processor.fit_vocabulary(self.train_set.instruction_texts()):
                    self.train_set.retokenize()
            self.val_set = self._dataset(self.val_paths, train=False) if self.val_paths else None

    def _loader(self, dataset: MobileVLAH5Dataset, shuffle: bool) -> DataLoader:
        d, t = self.config.data, self.config.trainer
        drop_last = shuffle and len(dataset) > d.batch_size
        # Its own generator: creating an iterator draws worker seeds from it, not from the global
        # RNG, so a validation pass or a resume does not shift dropout or augmentation draws.
        generator = torch.Generator().manual_seed(t.seed)
        common = dict(num_workers=d.num_workers, collate_fn=dataset.collater, persistent_workers=d.num_workers > 0,
                      generator=generator)
        if shuffle and is_weighted(self.sources):
            # An epoch draws as many windows as the set holds, each source by its weight. (A resumed
            # run draws afresh: exact continuation covers the unweighted sampler below.)
            weights = window_weights(dataset.window_sources(), self.sources)
            sampler = WeightedRandomSampler(weights, num_samples=len(dataset), replacement=True,
                                            generator=torch.Generator().manual_seed(d.seed))
            return DataLoader(dataset, batch_size=d.batch_size, sampler=sampler, drop_last=drop_last, **common)
        if shuffle and t.devices * t.num_nodes == 1:
            sampler = ResumableBatchSampler(len(dataset), d.batch_size, t.seed, drop_last)
            trainer = getattr(self, "trainer", None)
            if trainer is not None:  # resumed: continue at the batch the checkpoint reached
                sampler.resume_at(trainer.global_step * t.accumulate_grad_batches)
            return DataLoader(dataset, batch_sampler=sampler, **common)
        return DataLoader(dataset, batch_size=d.batch_size, shuffle=shuffle, drop_last=drop_last, **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []
