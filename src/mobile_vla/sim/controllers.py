"""Policy controllers for collection workers (DAgger): the shared
:class:`~mobile_vla.policy.controller.PolicyController`, built inside each worker process."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp

from mobile_vla.policy.controller import PolicyController


@dataclasses.dataclass(frozen=True)
class PolicyControllerFactory:
    """Picklable recipe: each collection worker loads its own copy of the policy."""

    checkpoint: str
    # DAgger queries the policy every step and executes its first action: how every recorded
    # recipe collected its rounds (the evaluation default is another matter).
    strategy: str = "first"

    def fingerprint(self) -> dict:
        """What a collection driven by this policy depends on: its weights, not just its path."""
        from mobile_vla.fingerprint import weights_digest

        return {"checkpoint": self.checkpoint, "weights_sha256": weights_digest(self.checkpoint),
                "strategy": self.strategy}

    def __call__(self) -> PolicyController:
        import torch

        if mp.parent_process() is not None:  # a pool worker: workers share the cores
            torch.set_num_threads(1)
        # In the calling process (workers=1) the thread count stays: changing it there would change
        # the numerics of everything that runs after the collection (the next training round).
        from mobile_vla.policy.backends import load_policy

        return PolicyController(load_policy(self.checkpoint), strategy=self.strategy)
