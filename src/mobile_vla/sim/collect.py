"""Paired, deterministic, resumable episode collection (``mobile-vla sim collect``).

Scene ``i`` of a run with base seed ``s`` has seed :func:`scene_seed(s, i)` and is recorded
twice, with a left and a right instruction (same scene, same start pose). Everything an
episode contains derives from ``(s, i, side)``, so the output does not depend on the number
of workers or on interruptions. Files are written atomically by ``write_episode``; a rerun
skips episodes whose final file exists and removes stale ``*.h5.tmp`` files of killed runs.

Unpaired (``unpaired``, ``--unpaired``): each scene is recorded once, as the robot's data was —
on the side the scene suggests (:func:`mobile_vla.sim.suggested.suggested_side`) or on a random
side — with the robot's instruction, no counterfactual labels, and only the robot's file
attributes and name pattern (``episode_{stamp}_{N}box_{orient}_{side}_core_{distance}.h5``).

DAgger (``controller_factory``, ``--policy``): at each step the expert's action is executed
with probability ``beta`` and the policy's otherwise; the recorded ``actions`` are always the
expert's clean labels at the visited states.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.data.episode import Episode, Scenario, format_episode_name, write_episode
from mobile_vla.sim.expert import ExpertConfig, NoiseConfig
from mobile_vla.sim.rollout import Controller, RolloutResult, run_episode
from mobile_vla.sim.scene import SceneSpec, scene_seed
from mobile_vla.sim.suggested import suggested_side
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import (
    SIDES,
    canonical_instruction,
    check_family_weights,
    sample_instruction,
)

log = logging.getLogger(__name__)
_EPOCH = dt.datetime(2030, 1, 1)  # simulated stamps: far from real recordings, deterministic
NOISY_ATTEMPTS = 3  # a noisy rollout that collides is retried with fresh noise, then recorded clean
UNPAIRED_SIDES = ("suggested", "random")  # how an unpaired recording picks its one side
#: The file attributes the robot's recordings carry (real-robot-h5-format.md); unpaired files get only these.
ROBOT_ATTRS = ("total_duration", "obstacle_layout_type", "time_period", "collection_datetime",
               "collection_hour", "collection_minute")


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """What ``sim collect`` records.

    Attributes:
        out: output directory.
        episodes: number of episodes (rounded up to an even number: scenes come in pairs).
        seed: base seed; the same seed gives the same files.
        image_size: rendered frame size S (frames are S×S).
        expert: the expert's driving style and geometry.
        noise_fraction: fraction of episodes whose executed expert actions are perturbed.
        noise: perturbation strength.
        beta: DAgger expert-mixing probability (only with a controller).
        layout: HDF5 image key layout (``images`` or ``observations/images``).
        task: the simulator task (``sim.tasks.TASKS``).
        scenes: the scene preset (``sim.tasks.SCENE_PRESETS``; ``None``: the task's default).
        no_side_fraction: fraction of episodes whose instruction names no side ("reach the cup");
            the expert then takes the side the robot is on.
        family_weights: ``{family: weight}`` for drawing each episode's instruction family
            (:func:`mobile_vla.vocab.instructions.sample_instruction`); ``None``: uniform.
        unpaired: ``None`` records both sides of every scene; ``"suggested"`` or ``"random"``
            records each scene once, on that side, in the robot's own layout (see the module doc).
    """

    out: Path
    episodes: int
    seed: int = 0
    image_size: int = 112
    expert: ExpertConfig = ExpertConfig()
    noise_fraction: float = 0.5
    noise: NoiseConfig = NoiseConfig()
    beta: float = 0.0
    layout: str = "images"
    task: str = "cup"
    scenes: str | None = None
    no_side_fraction: float = 0.0
    unpaired: str | None = None
    family_weights: dict[str, float] | None = None

    def __post_init__(self) -> None:
        check_family_weights(self.family_weights)
        if self.unpaired not in (None, *UNPAIRED_SIDES):
            raise ValueError(f"unpaired must be None or one of {UNPAIRED_SIDES}, got {self.unpaired!r}")

    @property
    def num_scenes(self) -> int:
        return int(self.episodes) if self.unpaired else (int(self.episodes) + 1) // 2

    def sides(self, scene: SceneSpec) -> tuple[str, ...]:
        """The sides scene ``scene`` is recorded on."""
        if self.unpaired == "suggested":
            return (suggested_side(scene),)
        if self.unpaired == "random":
            rng = np.random.default_rng(np.random.SeedSequence([scene.seed, len(SIDES)]))
            return (SIDES[int(rng.integers(len(SIDES)))],)
        return SIDES


def episode_path(cfg: CollectConfig, index: int, scene: SceneSpec, side: str, tag: str) -> Path:
    """``episode_{stamp}_{N}box_{hori|vert}_{side}_core_{distance}_{tag}{seed}-{index}.h5``
    (unpaired: the robot's name, without the ``_{tag}{seed}-{index}`` suffix)."""
    scenario = Scenario(side=side, boxes=scene.num_boxes, orientation=scene.orientation, kind="core",
                        distance=scene.distance)
    stamp = _stamp(index, cfg).strftime("%Y%m%d_%H%M%S")
    suffix = None if cfg.unpaired else f"{tag}{cfg.seed}-{index:06d}"
    return Path(cfg.out) / format_episode_name(scenario, stamp, suffix=suffix)


def _stamp(index: int, cfg: CollectConfig | None = None) -> dt.datetime:
    if cfg is not None and cfg.unpaired:
        # The name carries no seed, so the stamp does: a day per base seed, a second per scene.
        return _EPOCH + dt.timedelta(days=int(cfg.seed) % 2_000_000, seconds=int(index))
    return _EPOCH + dt.timedelta(minutes=int(index))


def _episode(cfg: CollectConfig, index: int, scene: SceneSpec, result: RolloutResult, noisy: bool,
             source: str) -> Episode:
    stamp = _stamp(index, cfg)
    attrs: dict[str, Any] = {
        "total_duration": round(result.steps * 0.4, 3),
        "obstacle_layout_type": f"{scene.num_boxes}box_{scene.orientation}",
        "time_period": "simulated",
        "collection_datetime": stamp.isoformat(),
        "collection_hour": stamp.hour,
        "collection_minute": stamp.minute,
        "scene_id": f"sim{cfg.seed}-{index:06d}",
        "scene_seed": scene.seed,
        "task": cfg.task,
        "scenes": resolve(cfg.task, cfg.scenes)[2],
        "boxes": scene.num_boxes,
        "orientation": scene.orientation,
        "side": result.side,
        "source": source,
        "expert_style": cfg.expert.style,
        "noisy": noisy,
        "success": result.success,
        "collision": result.collision,
        "passed_side": result.passed_side or "none",
        "expert_executed_fraction": float(result.expert_executed.mean()),
        "trajectory": result.poses,  # (T+1, 3) x, y, yaw: for plots and diagnostics
        "obstacles": scene.obstacles_array(),  # (n_boxes, 4) x, y, half_x, half_y
        "target_xy": np.asarray(resolve(cfg.task, cfg.scenes)[1].goal(scene, result.side), np.float32),
    }
    if result.side is None and cfg.expert.no_side_route != "view":
        # A route by convention is not mirror-symmetric: the dataset must not mirror this episode.
        attrs["no_side_route"] = cfg.expert.no_side_route
    if cfg.unpaired:  # what the robot's files carry, nothing that a robot could not record
        attrs = {k: attrs[k] for k in ROBOT_ATTRS}
    return Episode(
        images=np.ascontiguousarray(result.frames[..., ::-1]),  # RGB render → BGR on disk
        actions=result.labels,
        instruction=result.instruction,
        attrs=attrs,
        # A no-side instruction is its own mirror, and the robot's own recordings have none: no
        # counterfactual label exists for either.
        counterfactual_actions=result.counterfactual if result.side and not cfg.unpaired else None,
    )


def record_scene(world: World, cfg: CollectConfig, index: int, controller: Controller | None = None) -> list[Path]:
    """Record scene ``index`` on ``cfg.sides`` (skipping existing files). Returns the paths written."""
    _, task, _, preset = resolve(cfg.task, cfg.scenes)
    scene = preset.sample(scene_seed(cfg.seed, index))
    tag = "dag" if controller is not None else "sim"
    written = []
    for side in cfg.sides(scene):
        path = episode_path(cfg, index, scene, side, tag)
        if path.exists():
            continue
        rng = np.random.default_rng(np.random.SeedSequence([scene.seed, SIDES.index(side)]))
        no_side = not cfg.unpaired and cfg.no_side_fraction > 0 and rng.random() < cfg.no_side_fraction
        instruction = sample_instruction(None if no_side else side, rng, target=task.target,
                                         family_weights=cfg.family_weights)
        if cfg.unpaired:  # the robot's recordings carry its one instruction
            instruction = canonical_instruction(side, task.target)
        noisy = controller is None and rng.random() < cfg.noise_fraction
        for attempt in range(NOISY_ATTEMPTS + 1):
            noise = cfg.noise if noisy and attempt < NOISY_ATTEMPTS else None
            result = run_episode(world, scene, instruction, controller=controller, beta=cfg.beta,
                                 expert=cfg.expert, noise=noise, rng=rng, task=task)
            if controller is not None or not result.collision:
                break
        written.append(write_episode(path, _episode(cfg, index, scene, result, noise is not None, tag),
                                     layout=cfg.layout))
    return written


# -- worker processes -------------------------------------------------------------------
_worker: dict[str, Any] = {}


def _init_worker(cfg: CollectConfig, controller_factory: Callable[[], Controller] | None) -> None:
    _worker["world"] = World(cfg.image_size)
    _worker["cfg"] = cfg
    _worker["controller"] = controller_factory() if controller_factory is not None else None


def _work(index: int) -> list[Path]:
    return record_scene(_worker["world"], _worker["cfg"], index, _worker["controller"])


def _results(cfg: CollectConfig, todo: list[int], workers: int,
             controller_factory: Callable[[], Controller] | None) -> Iterator[list[Path]]:
    if workers <= 1:
        _init_worker(cfg, controller_factory)
        try:
            yield from map(_work, todo)
        finally:
            _worker.pop("world").close()
        return
    # Not fork: a parent that has rendered holds an EGL context that a forked child cannot use.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["mobile_vla.sim.collect"])
    with ctx.Pool(workers, _init_worker, (cfg, controller_factory)) as pool:
        yield from pool.imap_unordered(_work, todo)


# Not part of the fingerprint: ``out`` (where, not what) and ``episodes`` (scene i depends only on
# the seed and i, so asking for more episodes extends a collection and fewer reuses a prefix).
FINGERPRINT_EXEMPT = ("out", "episodes")


def collect_fingerprint(cfg: CollectConfig, controller_factory: Callable[[], Controller] | None = None) -> dict:
    """The settings that shape a collection's episodes (see :mod:`mobile_vla.fingerprint`)."""
    from mobile_vla.fingerprint import fingerprint

    settings = dataclasses.asdict(cfg)
    settings["scenes"] = resolve(cfg.task, cfg.scenes)[2]
    identify = getattr(controller_factory, "fingerprint", None)
    kind = controller_factory if isinstance(controller_factory, type) else type(controller_factory)
    name = getattr(controller_factory, "__qualname__", None) or f"{kind.__module__}.{kind.__qualname__}"
    settings["policy"] = (identify() if identify else name) if controller_factory else None
    return fingerprint(settings, FINGERPRINT_EXEMPT)


def collect(cfg: CollectConfig, workers: int = 1, controller_factory: Callable[[], Controller] | None = None,
            progress: bool = True, force_restart: bool = False) -> dict[str, Any]:
    """Record ``cfg.episodes`` episodes (paired, or one per scene) into ``cfg.out``. Returns a summary dict.

    Raises:
        FingerprintMismatch: ``cfg.out`` holds episodes collected with other settings (unless
            ``force_restart``, which deletes them first).
    """
    from tqdm import tqdm

    from mobile_vla.fingerprint import claim

    out = Path(cfg.out)
    claim(out, collect_fingerprint(cfg, controller_factory), ["*.h5", "*.h5.tmp"], force_restart,
          defaults=collect_fingerprint(CollectConfig(cfg.out, cfg.episodes), controller_factory))
    for stale in out.glob("*.h5.tmp"):  # left behind by a killed run; never a complete episode
        stale.unlink()
    tag = "dag" if controller_factory is not None else "sim"
    preset = resolve(cfg.task, cfg.scenes)[3]
    todo, skipped, total = [], 0, 0
    for i in range(cfg.num_scenes):
        scene = preset.sample(scene_seed(cfg.seed, i))
        sides = cfg.sides(scene)
        done = sum(episode_path(cfg, i, scene, side, tag).exists() for side in sides)
        skipped += done
        total += len(sides)
        if done < len(sides):
            todo.append(i)
    start, written = time.perf_counter(), []
    bar = tqdm(total=total, initial=skipped, unit="ep", desc="sim collect", disable=not progress)
    with bar:
        for paths in _results(cfg, todo, workers, controller_factory):
            written += paths
            bar.update(len(paths))
    seconds = time.perf_counter() - start
    return {
        "out": str(out),
        "episodes": total,
        "written": len(written),
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "episodes_per_minute": round(60 * len(written) / seconds, 1) if written else None,
    }
