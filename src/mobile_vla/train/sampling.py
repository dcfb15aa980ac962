"""A shuffling batch sampler whose position is a pure function of the optimiser step.

Lightning does not fast-forward a plain DataLoader when a run resumes mid-epoch, so a resumed
run would see different batches than an uninterrupted one. Here batch ``k`` of the whole run is
fixed by ``(seed, k)``: epoch ``e = k // batches_per_epoch`` uses permutation
``default_rng([seed, e])``, and a resumed run starts at ``k = global_step *
accumulate_grad_batches``. Only for one process; distributed runs keep Lightning's sampler.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices into a dataset of ``size`` items, reshuffled per epoch."""

    def __init__(self, size: int, batch_size: int, seed: int, drop_last: bool):
        if size <= 0 or batch_size <= 0:
            raise ValueError(f"size and batch_size must be positive, got {size}, {batch_size}")
        self.size, self.batch_size, self.seed, self.drop_last = int(size), int(batch_size), int(seed), drop_last
        self.next_batch = 0  # index of the next batch in the whole run

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def resume_at(self, batch: int) -> None:
        """Continue from batch ``batch`` of the run (``global_step * accumulate_grad_batches``)."""
        self.next_batch = int(batch)

    def batch(self, k: int) -> list[int]:
        """The indices of batch ``k`` of the run."""
        epoch, offset = divmod(k, len(self))
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return order[offset * self.batch_size:(offset + 1) * self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        # One pass yields the rest of the current epoch (all of it unless resumed mid-epoch).
        end = (self.next_batch // len(self) + 1) * len(self)
        while self.next_batch < end:
            k = self.next_batch
            self.next_batch += 1
            yield self.batch(k)
