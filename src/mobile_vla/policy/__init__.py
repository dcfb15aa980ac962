"""Running a trained policy: checkpoint format, streaming sessions, chunk execution, backends.

- :mod:`~mobile_vla.policy.contract` — ``PolicyBackend`` / ``PolicySession``, the contract;
- :mod:`~mobile_vla.policy.checkpoint` — the checkpoint directory (write, read, rebuild);
- :mod:`~mobile_vla.policy.streaming` — :class:`Policy` / :class:`Session`, the torch backend;
- :mod:`~mobile_vla.policy.backends` — ``POLICY_BACKENDS`` and ``load_policy(path)``;
- :mod:`~mobile_vla.policy.executor`, :mod:`~mobile_vla.policy.controller` — chunks → commands.

Nothing here imports training, evaluation, the simulator or the server. ``Policy`` loads lazily,
so the package imports without torch (an exported backend can run without it).
"""

from __future__ import annotations

__all__ = ["Policy", "Session", "load_policy"]


def __getattr__(name: str):
    if name in ("Policy", "Session"):
        from mobile_vla.policy import streaming

        return getattr(streaming, name)
    if name == "load_policy":
        from mobile_vla.policy.backends import load_policy

        return load_policy
    raise AttributeError(name)
