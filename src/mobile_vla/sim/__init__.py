"""The MuJoCo simulator: scenes, world, expert driver, rollouts, paired collection, Gymnasium env.

Importing this package registers ``MobileVLA-Navigate-v0`` with Gymnasium (the env module
itself, and mujoco, load only when the env is made).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

ENV_ID = "MobileVLA-Navigate-v0"


def _register() -> None:
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="mobile_vla.sim.env:NavigateEnv")


_register()
