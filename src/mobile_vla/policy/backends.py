"""Policy backends: how a saved policy on disk becomes a :class:`PolicyBackend`.

A backend is registered in :data:`POLICY_BACKENDS` with a :class:`BackendSpec`: ``detect(path)``
says whether it reads that path, ``load(path, device)`` loads it. :func:`load_policy` picks the
first backend (by name) that detects the path, so ``--checkpoint`` accepts any registered
format. The ``torch`` backend reads the checkpoint directories training writes; the ``onnx``
backend reads the directories ``mobile-vla export --format onnx`` writes, without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from mobile_vla.errors import MobileVLAError
from mobile_vla.policy.contract import PolicyBackend
from mobile_vla.registry import Registry
from mobile_vla.vocab.instructions import SIDES


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    detect: Callable[[Path], bool]
    load: Callable[[Path, str], PolicyBackend]
    description: str  # what the backend reads, for error messages


POLICY_BACKENDS: Registry[BackendSpec] = Registry("policy backend")


def load_policy(path: str | Path, backend: str | None = None, device: str = "cpu",
                no_side_route: str | None = None) -> PolicyBackend:
    """Load the policy at ``path`` with ``backend`` (default: the first registered one that reads it).

    ``no_side_route`` (``left`` / ``right``): the built-in backends' sessions give a request that
    names no side ("reach the cup") to the model as that side's canonical instruction — a
    convention of the deployment, not of the checkpoint (training and the processor are unchanged).
    """
    if no_side_route is not None and no_side_route not in SIDES:
        raise MobileVLAError(f"no_side_route: expected one of {list(SIDES)} or None, got {no_side_route!r}")
    path = Path(path)
    if backend is not None:
        return _with_route(POLICY_BACKENDS.get(backend).load(path, device), no_side_route)
    for _, spec in POLICY_BACKENDS.items():
        if spec.detect(path):
            return _with_route(spec.load(path, device), no_side_route)
    known = "; ".join(f"{name}: {spec.description}" for name, spec in POLICY_BACKENDS.items())
    raise MobileVLAError(f"{path}: no policy backend reads this path ({known})")


def _with_route(policy: PolicyBackend, no_side_route: str | None) -> PolicyBackend:
    if no_side_route is not None:
        policy.no_side_route = no_side_route  # read by policy.session.StreamingSession
    return policy


def _load_torch(path: Path, device: str) -> PolicyBackend:
    from mobile_vla.policy.streaming import Policy  # torch loads only when this backend is used

    return Policy.from_checkpoint(path, device)


def _is_torch_checkpoint(path: Path) -> bool:
    from mobile_vla.policy.checkpoint import CONFIG_FILE, WEIGHTS_FILE

    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


POLICY_BACKENDS.register("torch", BackendSpec(_is_torch_checkpoint, _load_torch,
                                               "a training checkpoint directory (model.safetensors, config.json)"))


def _load_onnx(path: Path, device: str) -> PolicyBackend:
    from mobile_vla.policy.onnx_backend import OnnxPolicy  # onnxruntime loads only when this backend is used

    return OnnxPolicy(path)


def _is_onnx_export(path: Path) -> bool:
    from mobile_vla.policy.onnx_backend import is_export

    return is_export(path)


POLICY_BACKENDS.register("onnx", BackendSpec(_is_onnx_export, _load_onnx,
                                              "an ONNX export directory (manifest.json; mobile-vla export)"))
