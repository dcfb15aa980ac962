"""Pretrained files without a network: find a local copy first, fail in well under a second.

``transformers`` retries an unreachable model hub for about a minute before its error. The
pretrained Kosmos-2 weights and tokenizer are therefore resolved here first: a local directory,
else a complete copy in the Hugging Face cache, else — only when the hub answers a TCP connect
within half a second and offline mode is off — the hub id for ``transformers`` to download.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

CONNECT_TIMEOUT_S = 0.5
_TRUTHY = {"1", "true", "yes", "on"}


def offline_mode() -> bool:
    return any(os.environ.get(k, "").strip().lower() in _TRUTHY for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether the hub (``HF_ENDPOINT`` or huggingface.co) accepts a TCP connection in ``timeout``.

    Name resolution cannot be given a timeout, so the probe runs in a daemon thread that is
    abandoned when it overruns.
    """
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(2 * timeout)
    return bool(result and result[0])


def hub_cache_dir() -> Path:
    """Where ``huggingface_hub`` keeps downloads (``HF_HUB_CACHE``, ``HF_HOME``/hub, or ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def cached_snapshot(repo_id: str, revision: str = "main") -> str | None:
    """The snapshot directory of model ``repo_id`` in the Hugging Face cache, or None.

    Read from the cache's documented layout (``models--org--name/refs/<revision>`` names the
    ``snapshots/<commit>`` folder) rather than through ``huggingface_hub``, whose import alone
    can take longer than the whole check is allowed to.
    """
    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = repo / "snapshots" / commit
    return str(snapshot) if snapshot.is_dir() and any(snapshot.iterdir()) else None


def resolve_pretrained(name: str) -> str | None:
    """A directory or hub id ``from_pretrained`` can load without waiting on a dead network.

    Returns ``name`` itself when it is a local directory or when the hub is reachable (and
    offline mode is off), the cached snapshot when there is one, and ``None`` when nothing
    can be loaded: the caller raises its own clear error at once.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    snapshot = cached_snapshot(name)
    if snapshot is not None:
        return snapshot
    if offline_mode() or not hub_reachable():
        return None
    return name
