"""The Kosmos-2 backbone: builds the multimodal sequence explicitly and reads the action tokens.

Sequence (the processor's token layout, length L)::

    [<s>, <image>, latent x Q, </image>, prompt + instruction, <action> x K, <pad> ...]

The image latents are scattered onto the ``image_embeds_position_mask`` slots only and the
``<action>`` slots get learnable embeddings, so the instruction's token embeddings reach the
language model untouched: were latents scattered over the prompt, they would overwrite the
instruction's words and the action could not depend on them.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

from mobile_vla.errors import ConfigError, MobileVLAError
from mobile_vla.model.config import BackboneConfig, FreezeConfig, LoRAConfig

log = logging.getLogger(__name__)

Tokens = dict[str, torch.Tensor]


def build_kosmos2(config: BackboneConfig, vocab_size: int, architecture: dict | None = None) -> nn.Module:
    """A ``transformers.Kosmos2Model`` for the preset, with ``vocab_size`` token embeddings.

    ``architecture`` (a saved ``Kosmos2Config`` dict) rebuilds the exact network with random
    weights and no download: checkpoints load their own weights on top.
    """
    source = None
    if architecture is None and config.preset not in ("tiny", "kosmos-2-random"):
        source = _pretrained_source(config)  # before importing transformers: fail in well under a second
    from transformers import Kosmos2Config, Kosmos2Model

    if architecture is not None:
        model = Kosmos2Model(Kosmos2Config.from_dict(architecture))
    elif config.preset == "tiny":
        kcfg = Kosmos2Config(
            text_config={
                "vocab_size": vocab_size,
                "embed_dim": config.text_dim,
                "layers": config.text_layers,
                "attention_heads": config.text_heads,
                "ffn_dim": 4 * config.text_dim,
                "dropout": config.text_dropout,
                "attention_dropout": 0.0,
                "activation_dropout": 0.0,
                "max_position_embeddings": 256,
            },
            vision_config={
                "hidden_size": config.vision_dim,
                "intermediate_size": 4 * config.vision_dim,
                "num_hidden_layers": config.vision_layers,
                "num_attention_heads": config.vision_heads,
                "image_size": config.image_size,
                "patch_size": config.patch_size,
            },
            latent_query_num=config.latent_query_num,
        )
        model = _init_from_scratch(Kosmos2Model(kcfg))
    elif config.preset == "kosmos-2-random":
        model = _init_from_scratch(Kosmos2Model(Kosmos2Config()))
    else:
        try:
            model = Kosmos2Model.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise _pretrained_error(config, exc.__class__.__name__) from None
    if model.get_input_embeddings().num_embeddings != vocab_size:
        model.resize_token_embeddings(vocab_size)  # the processor added <image>/</image>/<action>
    return model


def _pretrained_error(config: BackboneConfig, reason: str) -> MobileVLAError:
    return MobileVLAError(
        f"model.backbone.pretrained_path={config.pretrained_path!r}: cannot load Kosmos-2 "
        f"({reason}). Offline? Download microsoft/kosmos-2-patch14-224 on a connected "
        "machine and point pretrained_path (and processor.tokenizer) at the local directory, or use "
        "preset 'tiny' / 'kosmos-2-random'."
    )


def _pretrained_source(config: BackboneConfig) -> str:
    from mobile_vla.hub import resolve_pretrained

    source = resolve_pretrained(config.pretrained_path)
    if source is None:
        raise _pretrained_error(config, "no local copy, and the model hub is unreachable or offline mode is on")
    return source


def _init_from_scratch(model: nn.Module) -> nn.Module:
    """Re-initialise two parts of a random-init Kosmos-2 so that it can see (pretrained weights never pass here).

    With ``transformers``' default init (std 0.02 everywhere):
    - image latents enter the LM ~30x smaller than word embeddings (three stacked std-0.02
      layers in the image-to-text projection): the LM sees almost no image;
    - the vision tower's position embeddings are ~25x smaller than the patch embeddings, so
      the pooled image features barely depend on *where* the cup and the boxes are.
    Either keeps training on the vision-blind plateau (the mean action per instruction).
    """
    proj = model.image_to_text_projection
    embeddings = model.vision_model.model.embeddings
    with torch.no_grad():
        for linear in (proj.dense, proj.x_attn.v_proj, proj.x_attn.out_proj):
            nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
        nn.init.normal_(embeddings.position_embedding.weight, std=0.5)  # ≈ the patch embeddings' scale
    return model


def _lora_target_regex(lora: LoRAConfig) -> str:
    towers = {"text": "text_model", "vision": "vision_model", "both": "(text_model|vision_model)"}[lora.apply_to]
    names = "|".join(re.escape(m) for m in lora.target_modules)
    return rf".*{towers}\..*\.({names})$"


class Kosmos2Backbone(nn.Module):
    """Kosmos-2 plus learnable action tokens; optional LoRA adapters and freezing.

    Args:
        config: preset and sizes.
        vocab_size: the processor's vocabulary size.
        num_action_tokens: K, the number of ``<action>`` slots per sequence.
        lora / freeze: adaptation settings (see docs/training.md).
    """

    def __init__(
        self,
        config: BackboneConfig,
        vocab_size: int,
        num_action_tokens: int,
        lora: LoRAConfig | None = None,
        freeze: FreezeConfig | None = None,
        architecture: dict | None = None,
    ):
        super().__init__()
        self.kosmos = build_kosmos2(config, vocab_size, architecture)
        self.hidden_size: int = self.kosmos.config.text_config.embed_dim
        self.num_latents: int = self.kosmos.config.latent_query_num
        self.num_action_tokens = num_action_tokens
        emb = self.kosmos.get_input_embeddings().weight
        # Same scale as the word embeddings, never zero: a zero action token carries no signal.
        std = float(emb.detach().float().std())
        self.action_embeddings = nn.Parameter(torch.randn(num_action_tokens, self.hidden_size) * std)
        self._apply_freeze(freeze or FreezeConfig())
        if lora is not None and lora.enabled:
            self._apply_lora(lora)

    # ------------------------------------------------------------------ adaptation
    def _apply_freeze(self, freeze: FreezeConfig) -> None:
        k = self.kosmos
        groups = [
            (freeze.backbone, k),
            (freeze.vision, k.vision_model),
            (freeze.projector, k.image_to_text_projection),
            (freeze.text_embeddings, k.get_input_embeddings()),
        ]
        for frozen, module in groups:
            if frozen:
                for p in module.parameters():
                    p.requires_grad_(False)

    def _apply_lora(self, lora: LoRAConfig) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        cfg = LoraConfig(
            r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=_lora_target_regex(lora)
        )
        try:
            inject_adapter_in_model(cfg, self.kosmos)
        except ValueError as exc:
            raise ConfigError(f"model.lora.target_modules {lora.target_modules}: {exc}") from None
        # inject_adapter_in_model marks only adapters trainable when it freezes; make it explicit.
        for name, p in self.kosmos.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)

    # ------------------------------------------------------------------ pieces
    def image_latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` → image latents ``(B, Q, H)`` (independent of the text)."""
        return self.kosmos.get_image_features(pixel_values)

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` → the language model's word embeddings ``(B, L, H)`` (before its embed scale)."""
        return self.kosmos.get_input_embeddings()(input_ids)

    def build_inputs_embeds(self, tokens: Tokens, latents: torch.Tensor) -> torch.Tensor:
        """Word embeddings with latents on the image slots and action embeddings on the action slots.

        Args:
            tokens: ``input_ids``, ``image_embeds_position_mask``, ``action_token_mask``, each ``(B, L)``.
            latents: ``(B, Q, H)``.

        Returns:
            ``(B, L, H)``; every other position equals :meth:`token_embeddings`.
        """
        ids = tokens["input_ids"]
        image_mask = tokens["image_embeds_position_mask"].bool()
        action_mask = tokens["action_token_mask"].bool()
        B, Q = ids.shape[0], latents.shape[1]
        self._check_slots(image_mask, Q, "image_embeds_position_mask")
        self._check_slots(action_mask, self.num_action_tokens, "action_token_mask")
        embeds = self.token_embeddings(ids)
        embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), latents.to(embeds.dtype))
        actions = self.action_embeddings.to(embeds.dtype).unsqueeze(0).expand(B, -1, -1)
        return embeds.masked_scatter(action_mask.unsqueeze(-1), actions)

    @staticmethod
    def _check_slots(mask: torch.Tensor, expected: int, name: str) -> None:
        counts = mask.sum(1)
        if bool((counts != expected).any()):
            raise MobileVLAError(
                f"{name}: every row needs exactly {expected} slots, got {counts.tolist()} "
                "(processor and model disagree on the token layout)"
            )

    def text_hidden_states(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, H)`` input embeddings → last hidden states ``(B, L, H)`` of the causal LM."""
        out = self.kosmos.text_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state

    def action_states(self, tokens: Tokens, latents: torch.Tensor) -> torch.Tensor:
        """Hidden states at the action slots: ``(B, K, H)``."""
        hidden = self.text_hidden_states(self.build_inputs_embeds(tokens, latents), tokens["attention_mask"])
        B = hidden.shape[0]
        return hidden[tokens["action_token_mask"].bool()].view(B, self.num_action_tokens, self.hidden_size)

    def instruction_mask(self, tokens: Tokens) -> torch.Tensor:
        """``(B, L)`` bool: the prompt + instruction words (not BOS, image markers, latents, actions, pad)."""
        mask = tokens["attention_mask"].bool() & ~tokens["action_token_mask"].bool()
        mask = mask & ~tokens["image_embeds_position_mask"].bool()
        mask[:, : 3 + self.num_latents] = False  # <s>, <image>, latents, </image>
        return mask

    def instruction_text_states(self, tokens: Tokens) -> torch.Tensor:
        """Mean of the LM's hidden states over the instruction, without the image: ``(B, H)``."""
        words = self.instruction_mask(tokens)
        keep = tokens["attention_mask"].bool() & ~tokens["image_embeds_position_mask"].bool()
        keep = keep & ~tokens["action_token_mask"].bool()
        hidden = self.text_hidden_states(self.token_embeddings(tokens["input_ids"]), keep.long())
        w = words.unsqueeze(-1).to(hidden.dtype)
        return (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)
