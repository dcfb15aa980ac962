"""`mobile-vla sim`: collect paired episodes, check the expert in closed loop, plot trajectories."""

from __future__ import annotations

import argparse


def add_scene_args(parser: argparse.ArgumentParser) -> None:
    """``--task`` and ``--scenes``: where scenes are drawn from (registered names; see `mobile-vla plugins`)."""
    parser.add_argument("--task", default="cup", help="simulator task (default: cup)")
    parser.add_argument("--scenes", default=None, metavar="PRESET",
                        help="scene preset of the task; the cup task has classic, varied (its default) and "
                             "cluttered (see `mobile-vla plugins` for registered ones)")


def register(sub) -> None:
    p = sub.add_parser("sim", help="MuJoCo simulator: collect episodes, evaluate the expert, plot")
    ssub = p.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)

    c = ssub.add_parser("collect", help="record paired (left/right) episodes in the robot's HDF5 format")
    c.add_argument("--out", required=True, help="output directory")
    c.add_argument("--episodes", type=int, required=True, help="number of episodes (rounded up to even: pairs)")
    c.add_argument("--seed", type=int, default=0, help="base seed (same seed, same files)")
    c.add_argument("--workers", type=int, default=1, help="worker processes")
    c.add_argument("--image-size", type=int, default=112, help="frame size in pixels (S×S)")
    c.add_argument("--style", choices=("continuous", "discrete"), default="continuous",
                   help="expert style: smooth velocities or teleop-like ±1.15/0 keys")
    add_lane_args(c)
    c.add_argument("--noise", type=float, default=0.5,
                   help="fraction of episodes with perturbed executed actions (labels stay clean)")
    c.add_argument("--noise-prob", type=float, default=0.3, help="per-step perturbation probability")
    c.add_argument("--noise-std", type=float, default=0.5, help="perturbation std, m/s (continuous style)")
    c.add_argument("--policy", default=None, help="checkpoint dir: record DAgger rollouts of this policy")
    c.add_argument("--beta", type=float, default=0.0,
                   help="DAgger expert-mixing probability: each step executes the expert's action with "
                        "probability beta, the policy's otherwise (labels are always the expert's)")
    c.add_argument("--layout", choices=("images", "observations/images"), default="images")
    c.add_argument("--no-side-fraction", type=float, default=0.0,
                   help="fraction of episodes whose instruction names no side (\"reach the cup\"); "
                        "the expert's route for them: --no-side-route")
    c.add_argument("--family-weights", default=None, metavar="FAMILY=W[,FAMILY=W]",
                   help="how often each instruction family is drawn, e.g. paraphrase=0.45,relational=0.15,"
                        "negated=0.15,korean=0.25 (default: uniformly; a family left out is never drawn)")
    c.add_argument("--unpaired", action="store_true",
                   help="record each scene once, like the robot's data: no counterfactual labels, the robot's "
                        "instruction, file names and attributes; --episodes counts scenes")
    c.add_argument("--unpaired-side", choices=("suggested", "random"), default="suggested",
                   help="with --unpaired: the side the scene suggests (more room), or a random side")
    add_scene_args(c)
    c.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    c.add_argument("--force-restart", action="store_true",
                   help="delete episodes that --out holds from other settings and start over")
    c.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    c.set_defaults(func=_collect)

    e = ssub.add_parser("expert-eval", help="run the expert in closed loop on fresh scenes")
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--style", choices=("continuous", "discrete"), default="continuous")
    add_lane_args(e)
    e.add_argument("--out", default=None, help="also write rollouts.jsonl here (for `sim plot`)")
    add_scene_args(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_expert_eval)

    pl = ssub.add_parser("plot", help="top-down trajectories coloured by instruction")
    pl.add_argument("source", help="directory of sim episodes and/or *.jsonl rollout records")
    pl.add_argument("--out", required=True, help="PNG file to write")
    pl.add_argument("--max-scenes", type=int, default=16)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_plot)


def _check(condition: bool, message: str) -> None:
    from mobile_vla.errors import MobileVLAError

    if not condition:
        raise MobileVLAError(message)


def _family_weights(text: str | None) -> dict[str, float] | None:
    """``"paraphrase=0.5,korean=0.5"`` → ``{"paraphrase": 0.5, "korean": 0.5}`` (checked)."""
    from mobile_vla.vocab.instructions import check_family_weights

    if text is None:
        return None
    from mobile_vla.errors import MobileVLAError

    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)  # "" (no "=") or a non-number fails here
        except ValueError:
            raise MobileVLAError(f"--family-weights: expected FAMILY=WEIGHT, got {item!r}") from None
    try:
        check_family_weights(weights, "--family-weights")
    except ValueError as exc:
        raise MobileVLAError(str(exc)) from None
    return weights


def add_lane_args(parser: argparse.ArgumentParser) -> None:
    """The expert's lane beside the cluster (``ExpertConfig``; ``mobile-vla demo`` uses 0.75 / 0.6)."""
    from mobile_vla.sim.expert import NO_SIDE_ROUTES, ExpertConfig

    parser.add_argument("--clearance", type=float, default=ExpertConfig.clearance, metavar="M",
                        help="gap between the robot and the cluster's side in the expert's lane, m "
                             "(default: %(default)s)")
    parser.add_argument("--front-margin", type=float, default=ExpertConfig.front_margin, metavar="M",
                        help="the expert reaches the lane this far before the cluster's front face, m "
                             "(default: %(default)s)")
    parser.add_argument("--exit-margin", type=float, default=ExpertConfig.exit_margin, metavar="M",
                        help="the expert leaves the lane for the cup this far past the cluster's back face, m "
                             "(default: %(default)s)")
    parser.add_argument("--no-side-route", choices=NO_SIDE_ROUTES, default=ExpertConfig.no_side_route,
                        help="the expert's route under an instruction that names no side: away from the "
                             "cluster's bearing (view), or a fixed convention (default: %(default)s)")


def lane_expert(args: argparse.Namespace, **fields):
    """The ``ExpertConfig`` of :func:`add_lane_args`' flags (and ``fields``), checked."""
    from mobile_vla.sim.expert import ExpertConfig

    _check(args.clearance > 0, f"--clearance must be positive, got {args.clearance}")
    _check(args.front_margin >= 0, f"--front-margin must be >= 0, got {args.front_margin}")
    _check(args.exit_margin >= 0, f"--exit-margin must be >= 0, got {args.exit_margin}")
    return ExpertConfig(clearance=args.clearance, front_margin=args.front_margin, exit_margin=args.exit_margin,
                        no_side_route=args.no_side_route, **fields)


def _expert(args: argparse.Namespace):
    return lane_expert(args, style=args.style)


def _collect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_vla.cli import emit
    from mobile_vla.sim.collect import CollectConfig, collect
    from mobile_vla.sim.controllers import PolicyControllerFactory
    from mobile_vla.sim.expert import NoiseConfig

    _check(args.episodes > 0, f"--episodes must be positive, got {args.episodes}")
    _check(args.workers > 0, f"--workers must be positive, got {args.workers}")
    _check(16 <= args.image_size <= 1024, f"--image-size must be in [16, 1024], got {args.image_size}")
    _check(0.0 <= args.noise <= 1.0, f"--noise must be a fraction in [0, 1], got {args.noise}")
    _check(0.0 <= args.beta <= 1.0, f"--beta must be in [0, 1], got {args.beta}")
    _check(0.0 <= args.no_side_fraction <= 1.0,
           f"--no-side-fraction must be a fraction in [0, 1], got {args.no_side_fraction}")
    _check(not args.unpaired or args.episodes <= 86400, "--unpaired: at most 86400 episodes per seed "
           "(the file names' time stamps count one second per scene)")
    weights = _family_weights(args.family_weights)
    factory = None
    if args.policy is not None:
        _check(Path(args.policy).is_dir(), f"--policy {args.policy}: not a checkpoint directory")
        factory = PolicyControllerFactory(str(args.policy))
    cfg = CollectConfig(
        out=Path(args.out), episodes=args.episodes, seed=args.seed, image_size=args.image_size,
        expert=_expert(args), noise_fraction=args.noise,
        noise=NoiseConfig(prob=args.noise_prob, std=args.noise_std), beta=args.beta, layout=args.layout,
        task=args.task, scenes=args.scenes, no_side_fraction=args.no_side_fraction,
        unpaired=args.unpaired_side if args.unpaired else None, family_weights=weights,
    )
    summary = collect(cfg, workers=args.workers, controller_factory=factory, progress=not args.no_progress,
                      force_restart=args.force_restart)
    text = (f"wrote {summary['written']} episodes to {summary['out']} (skipped {summary['skipped']} existing) "
            f"in {summary['seconds']} s")
    emit(summary, args.json, text)
    return 0


def _expert_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_vla.cli import emit
    from mobile_vla.sim.evaluate import expert_eval

    _check(args.episodes > 0, f"--episodes must be positive, got {args.episodes}")
    records = Path(args.out) / "rollouts.jsonl" if args.out else None
    s = expert_eval(args.episodes, args.seed, _expert(args), records, args.task, args.scenes)
    text = (f"expert ({s['style']}) on {s['episodes']} episodes: success_rate {s['success_rate']:.3f}  "
            f"side_accuracy {s['side_accuracy']:.3f}  collision_rate {s['collision_rate']:.3f}  "
            f"mean_steps {s['mean_steps']:.1f}")
    emit(s, args.json, text)
    return 0


def _plot(args: argparse.Namespace) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.sim.plot import load_records, plot_trajectories

    records = load_records(args.source)
    out = plot_trajectories(records, args.out, args.max_scenes)
    emit({"out": str(out), "trajectories": len(records)}, args.json, f"wrote {out} ({len(records)} trajectories)")
    return 0
