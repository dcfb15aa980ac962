"""Output-directory fingerprints: resume only what the same settings produced.

Every output directory a run resumes into (``sim collect``, ``train``, ``demo``) holds
``fingerprint.json``: the settings that shape its data or model, flattened to dotted keys, and
the package version. A rerun into the directory compares its own fingerprint with the recorded
one; a difference stops the run with an error naming the differing keys, unless the caller
starts over (``--force-restart``), which removes the stage's outputs first.

Keys that may change between runs of one continuing job are *exempt* (each stage lists its own
and why), e.g. ``trainer.max_steps``: ``train --resume`` and the demo's DAgger rounds continue a
run for more steps.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mobile_vla.errors import MobileVLAError
from mobile_vla.jsonio import json_default, write_json

FINGERPRINT_FILE = "fingerprint.json"
VERSION_KEY = "package_version"


class FingerprintMismatch(MobileVLAError):
    """A rerun's settings differ from those that produced the outputs it would resume."""

    def __init__(self, directory: Path, differences: dict[str, tuple[Any, Any]]):
        self.directory = directory
        self.differences = differences
        shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(differences.items()))
        super().__init__(f"{directory / FINGERPRINT_FILE}: outputs were made with different settings ({shown}). "
                         "Use a new output directory, or pass --force-restart to delete them and start over.")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; values become JSON-plain (paths, numpy → str/number)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.loads(json.dumps(value, default=json_default))
    return flat


def fingerprint(settings: Mapping[str, Any], exempt: Iterable[str] = ()) -> dict[str, Any]:
    """The flattened ``settings`` minus ``exempt`` keys (a key or a dotted prefix), plus the version."""
    from mobile_vla import __version__

    exempt = tuple(exempt)
    flat = {k: v for k, v in flatten(settings).items()
            if not any(k == e or k.startswith(e + ".") for e in exempt)}
    return {VERSION_KEY: __version__, **flat}


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any],
                defaults: Mapping[str, Any] | None = None) -> dict[str, tuple[Any, Any]]:
    """``{key: (recorded, current)}`` for every key whose value differs or exists on one side only.

    ``defaults``: the fingerprint of the default settings. A key the recorded fingerprint lacks
    whose current value is its default is a setting added by a later version that leaves the
    earlier behaviour unchanged, so it is not a difference (upgrading keeps runs resumable). With
    ``defaults`` given, a recorded key that neither it nor ``current`` holds is one this version
    no longer fingerprints (exempted since: it changes nothing the stage makes), so it is not a
    difference either.
    """
    missing = "<absent>"

    def new_default(k: str) -> bool:
        return k not in recorded and k in (defaults or {}) and current.get(k, missing) == defaults[k]

    def no_longer_fingerprinted(k: str) -> bool:
        return defaults is not None and k not in current and k not in defaults

    return {k: (recorded.get(k, missing), current.get(k, missing))
            for k in sorted(set(recorded) | set(current))
            if recorded.get(k, missing) != current.get(k, missing) and not new_default(k)
            and not no_longer_fingerprinted(k)}


def read_fingerprint(directory: str | Path) -> dict[str, Any] | None:
    file = Path(directory) / FINGERPRINT_FILE
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise MobileVLAError(f"{file}: invalid JSON ({exc}); pass --force-restart to start over") from None
    if not isinstance(data, dict):
        raise MobileVLAError(f"{file}: expected a JSON object; pass --force-restart to start over")
    return data


def claim(directory: str | Path, current: Mapping[str, Any], outputs: Iterable[str],
          force_restart: bool = False, defaults: Mapping[str, Any] | None = None) -> bool:
    """Check ``directory`` against ``current`` (a :func:`fingerprint`) and record it.

    ``outputs``: glob patterns (relative to ``directory``) of what the stage writes; they are
    deleted when starting over, and their presence without a fingerprint (outputs of an older
    version, or of unknown settings) is treated as a mismatch. ``defaults``: see :func:`differences`.

    Returns ``True`` when the directory's existing outputs may be resumed, ``False`` when the
    stage starts from nothing.

    Raises:
        FingerprintMismatch: the recorded fingerprint differs and ``force_restart`` is off.
    """
    directory = Path(directory)
    patterns = list(outputs)
    existing = [p for pattern in patterns for p in directory.glob(pattern)] if directory.is_dir() else []
    recorded = read_fingerprint(directory)
    current = dict(current)
    if recorded is None and existing:
        diff = {"<fingerprint>": ("<none: outputs of unknown settings>", "<this run>")}
    else:
        diff = differences(recorded, current, defaults) if recorded is not None else {}
    if diff and not force_restart:
        raise FingerprintMismatch(directory, diff)
    resume = recorded is not None and not diff and not force_restart
    if force_restart:
        for path in existing:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
        (directory / FINGERPRINT_FILE).unlink(missing_ok=True)
    if not resume or recorded is None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / FINGERPRINT_FILE, current)
    return resume


def weights_digest(directory: str | Path, name: str = "model.safetensors") -> str | None:
    """SHA-256 of a checkpoint's weights file (what a DAgger collection's policy was), or None."""
    import hashlib

    file = Path(directory) / name
    if not file.is_file():
        return None
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
