"""`mobile-vla plugins`: what is registered at each extension point (built-in and from plug-ins)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("plugins", help="list the registered action heads, tasks, scene presets, episode "
                                       "formats and policy backends")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.data.formats import EPISODE_FORMATS
    from mobile_vla.model.heads import ACTION_HEADS
    from mobile_vla.policy.backends import POLICY_BACKENDS
    from mobile_vla.registry import load_plugins
    from mobile_vla.sim.tasks import SCENE_PRESETS, TASKS

    loaded = load_plugins()
    out = {
        "action_heads": ACTION_HEADS.names(),
        "tasks": {name: {"target": t.target, "default_scenes": t.default_scenes, "description": t.description}
                  for name, t in TASKS.items()},
        "scene_presets": {name: {"task": p.task, "description": p.description} for name, p in SCENE_PRESETS.items()},
        "episode_formats": EPISODE_FORMATS.names(),
        "policy_backends": POLICY_BACKENDS.names(),
        "plugins": loaded,
    }
    lines = [f"action heads     {', '.join(out['action_heads'])}",
             f"tasks            {', '.join(out['tasks'])}",
             "scene presets    " + ", ".join(f"{n} ({p['task']})" for n, p in out["scene_presets"].items()),
             f"episode formats  {', '.join(out['episode_formats'])}",
             f"policy backends  {', '.join(out['policy_backends'])}"]
    emit(out, args.json, "\n".join(lines))
    return 0
