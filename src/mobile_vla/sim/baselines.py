"""Controls that put a closed-loop figure in context: what a policy scores without seeing.

- :class:`BlindReplay` — the image-blind baseline: at step ``t`` it executes the mean, over
  clean expert episodes of the same scene preset and instructed side, of the expert's action
  at step ``t`` (over the episodes still running at ``t``), and zero after the longest of them.
  It never looks at a frame, so a benchmark it passes cannot tell seeing from not seeing.
- :class:`BlankFrames` — wraps any controller and replaces every frame with one constant grey
  image: a policy that uses its camera must then fall to about the blind baseline.
- The expert itself is the other reference (``run_episode`` without a controller).

The blind replay is fitted on scenes from :func:`baseline_scene_seed`, a stream disjoint from
both the collection and the evaluation streams, so it never replays the scenes it is scored on.
"""

from __future__ import annotations

import numpy as np

from mobile_vla.sim.expert import ExpertConfig
from mobile_vla.sim.rollout import Controller, run_episode
from mobile_vla.sim.scene import baseline_scene_seed
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import SIDES, canonical_instruction, side_of

BLIND_EPISODES = 100  # expert episodes per side the mean is taken over
BLANK_VALUE = 128  # the constant grey of a blanked frame
BASELINES = ("blind", "expert")


def mean_expert_actions(episodes: int = BLIND_EPISODES, seed: int = 0, task: str | None = None,
                        scenes: str | None = None, expert: ExpertConfig = ExpertConfig()) -> dict[str, np.ndarray]:
    """Per side, ``(T_max, 3)`` float32: the mean clean expert action at each step index.

    ``T_max`` is the longest of the ``episodes`` expert episodes of that side; the mean at step
    ``t`` is over the episodes still running at ``t``.
    """
    if episodes < 1:
        raise ValueError(f"the blind baseline needs at least one expert episode per side, got {episodes}")
    _, spec, _, preset = resolve(task, scenes)
    runs: dict[str, list[np.ndarray]] = {side: [] for side in SIDES}
    with World() as world:
        for i in range(episodes):
            scene = preset.sample(baseline_scene_seed(seed, i))
            for side in SIDES:
                result = run_episode(world, scene, canonical_instruction(side, spec.target), expert=expert,
                                     render=False, task=spec)
                runs[side].append(result.executed)
    tables = {}
    for side, actions in runs.items():
        longest = max(len(a) for a in actions)
        total, count = np.zeros((longest, 3)), np.zeros(longest)
        for a in actions:
            total[: len(a)] += a
            count[: len(a)] += 1
        tables[side] = (total / count[:, None]).astype(np.float32)
    return tables


class BlindReplay:
    """The image-blind controller: replays the per-side mean expert action by step index."""

    needs_frames = False  # run_episode need not render for it

    def __init__(self, tables: dict[str, np.ndarray], no_side_route: str = "view"):
        """``no_side_route``: the expert's route for a sentence that names no side; a fixed
        convention (``left`` / ``right``) is replayed like that side, the view rule cannot be."""
        missing = [side for side in SIDES if side not in tables]
        if missing:
            raise ValueError(f"blind replay needs a mean action table for every side, missing {missing}")
        self.tables = tables
        self.no_side_route = no_side_route
        self._table: np.ndarray | None = None
        self._step = 0

    def reset(self, instruction: str) -> None:
        side = side_of(instruction) or (self.no_side_route if self.no_side_route in SIDES else None)
        if side is None:
            raise ValueError(f"the blind replay needs an instruction that names a side or a fixed no-side "
                             f"route, got {instruction!r}")
        self._table, self._step = self.tables[side], 0

    def act(self, obs_image_rgb: np.ndarray) -> np.ndarray:
        if self._table is None:
            raise RuntimeError("act() called before reset(instruction)")
        t, self._step = self._step, self._step + 1
        return self._table[t].copy() if t < len(self._table) else np.zeros(3, np.float32)


class BlankFrames:
    """Any controller, shown one constant grey image instead of every camera frame."""

    def __init__(self, controller: Controller, value: int = BLANK_VALUE):
        self.controller = controller
        self.value = int(value)

    def reset(self, instruction: str) -> None:
        self.controller.reset(instruction)

    def act(self, obs_image_rgb: np.ndarray) -> np.ndarray:
        return self.controller.act(np.full_like(obs_image_rgb, self.value))
