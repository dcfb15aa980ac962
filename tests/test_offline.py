"""Pretrained Kosmos-2 without a network: a local copy is found first, else a clear error at once
(no download attempt, so none of transformers' minute of retries)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mobile_vla import hub
from mobile_vla.errors import MobileVLAError
from mobile_vla.model.config import KOSMOS2_HUB_ID

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "hf" / "hub"


@pytest.fixture
def no_download(monkeypatch):
    """Any attempt to reach the hub through transformers fails the test."""
    import transformers

    def forbidden(*args, **kwargs):
        raise AssertionError(f"tried to load from the hub: {args}")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", forbidden)
    monkeypatch.setattr(transformers.Kosmos2Model, "from_pretrained", forbidden)


def test_offline_mode_fails_before_any_download(empty_cache, no_download, monkeypatch):
    from mobile_vla.train.checkpoint import build_processor
    from mobile_vla.train.config import load_train_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = load_train_config(ROOT / "configs" / "kosmos2.yaml")
    with pytest.raises(MobileVLAError, match=r"cannot load tokenizer 'microsoft/kosmos-2-patch14-224': no local copy"):
        build_processor(config)
    from mobile_vla.model.backbone import build_kosmos2

    with pytest.raises(MobileVLAError, match=r"model\.backbone\.pretrained_path=.*no local copy"):
        build_kosmos2(config.model.backbone, vocab_size=100)


def test_unreachable_hub_fails_without_retrying(empty_cache, no_download, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert not hub.hub_reachable()
    assert hub.resolve_pretrained(KOSMOS2_HUB_ID) is None
    from mobile_vla.processing.processor import load_tokenizer

    with pytest.raises(MobileVLAError, match="no local copy"):
        load_tokenizer(KOSMOS2_HUB_ID)


def test_a_local_copy_is_used_first(empty_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = empty_cache / "models--microsoft--kosmos-2-patch14-224" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123\n")
    assert hub.resolve_pretrained(KOSMOS2_HUB_ID) == str(snapshot)
    local = tmp_path / "kosmos"
    local.mkdir()
    assert hub.resolve_pretrained(str(local)) == str(local)
