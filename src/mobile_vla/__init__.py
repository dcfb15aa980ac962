"""Mobile VLA: Kosmos-2 Vision-Language-Action policies for mobile robots.

``from mobile_vla import Policy`` gives the streaming inference API
(``Policy.from_checkpoint(dir).new_session(instruction).step(frame)``).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Policy", "__version__"]


def __getattr__(name: str):
    # Lazy: importing the package must not import torch (keeps the CLI's --help fast).
    if name == "Policy":
        from mobile_vla.policy.streaming import Policy

        return Policy
    raise AttributeError(name)
