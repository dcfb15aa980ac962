"""Scene labels from simulator geometry, and the auxiliary vision loss that uses them."""

import numpy as np
import pytest
import torch

from mobile_vla.data.scene_labels import mirror_scene, scene_labels
from mobile_vla.errors import ConfigError
from mobile_vla.model.vla import MobileVLA
from mobile_vla.vocab.scene import SCENE_LABELS, SCENE_SCALE
from model_fixtures import LEFT, RIGHT, processor_for, small_model_config, synthetic_batch


def test_scene_labels_are_in_the_robot_frame():
    attrs = {
        "trajectory": [[0.0, 0.0, 0.0], [1.0, 0.5, np.pi / 2], [2.0, 0.0, 0.0]],
        "obstacles": [[2.0, -0.5, 0.2, 0.2], [2.0, 0.5, 0.2, 0.2]],
        "target_xy": [3.0, 0.0],
    }
    labels = scene_labels(attrs, num_frames=2)
    assert labels.shape == (2, 7)
    # straight ahead; the cluster spans x 1.8–2.2 and y -0.7–0.7
    np.testing.assert_allclose(labels[0], [3.0, 0.0, 2.0, 0.0, 1.8, 2.2, 0.7], atol=1e-6)
    # facing +y (left) from (1, 0.5): the cup at (3, 0) is 0.5 m ahead and 2 m to the right
    np.testing.assert_allclose(labels[1], [-0.5, -2.0, -0.5, -1.0, -0.7, -0.3, 0.7], atol=1e-6)
    np.testing.assert_allclose(mirror_scene(labels)[:, [1, 3]], -labels[:, [1, 3]])
    assert scene_labels({}, 2) is None  # real robot files carry no geometry


def test_dataset_items_carry_scene_labels(tmp_path):
    from data_fixtures import tiny_processor, write_sim_episode
    from mobile_vla.data.dataset import MobileVLAH5Dataset
    from mobile_vla.sim.collect import CollectConfig, collect

    collect(CollectConfig(out=tmp_path / "sim", episodes=2, seed=1), workers=1, progress=False)
    write_sim_episode(tmp_path / "plain", 0)  # no geometry attributes
    processor = tiny_processor()
    sim = MobileVLAH5Dataset(tmp_path / "sim", processor, window_size=2, fwd_pred_next_n=2)
    item = sim[0]
    assert item["scene"].shape == (2, 7) and bool(item["scene_mask"].all())
    assert 0 < float(item["scene"][0, 0]) * SCENE_SCALE < 6  # the cup is ahead, metres away
    plain = MobileVLAH5Dataset(tmp_path / "plain", processor, window_size=2, fwd_pred_next_n=2)[0]
    assert not bool(plain["scene_mask"].any())


def test_scene_aux_loss_appears_and_trains_the_vision_tower():
    cfg = small_model_config(window=2, chunk=2, scene_aux=True)
    processor = processor_for(cfg)
    torch.manual_seed(0)
    model = MobileVLA(cfg, processor.vocab_size)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    batch["scene"] = torch.rand(2, 2, len(SCENE_LABELS))
    batch["scene_mask"] = torch.tensor([[True, True], [True, False]])
    losses = model.loss(batch)
    assert "loss_scene_aux" in losses and losses["loss_scene_aux"] > 0
    losses["loss_scene_aux"].backward()
    grad = model.backbone.kosmos.vision_model.model.embeddings.patch_embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    batch["scene_mask"][:] = False  # e.g. real robot frames: no geometry, no loss (but still a graph for DDP)
    unlabelled = model.loss(batch)["loss_scene_aux"]
    assert unlabelled.item() == 0.0 and unlabelled.requires_grad


@pytest.mark.parametrize("feature_norm", [True, False])
def test_feature_norm_toggles(feature_norm):
    cfg = small_model_config(window=2, chunk=2)
    cfg.head.feature_norm = feature_norm
    model = MobileVLA(cfg, processor_for(cfg).vocab_size)
    assert (model.feature_norm is not None) == feature_norm


def test_running_feature_norm_standardises_alike_in_training_and_at_inference():
    from mobile_vla.model.vla import RunningFeatureNorm

    torch.manual_seed(0)
    norm = RunningFeatureNorm(4)
    population = torch.randn(512, 4) * 3.0 + 1.0
    norm.train()
    norm(population)  # the first batch sets the statistics
    # a batch of one episode's near-identical frames: BatchNorm would blow its spread up to 1
    episode = population[:1] + 0.01 * torch.randn(32, 4)
    trained = norm(episode)
    assert float(trained.std(0).max()) < 0.1
    norm.eval()
    torch.testing.assert_close(norm(episode), trained, atol=0.05, rtol=0.0)  # statistics barely moved
    batchnorm = torch.nn.BatchNorm1d(4).train()
    assert float(batchnorm(episode).std(0).min()) > 0.9


def test_running_feature_norm_trains_with_both_instructions_in_one_step():
    cfg = small_model_config(window=2, chunk=2)
    cfg.head.feature_norm_stats = "running"
    processor = processor_for(cfg)
    torch.manual_seed(0)
    model = MobileVLA(cfg, processor.vocab_size)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    model.loss(batch)["loss"].backward()  # the head runs under the instruction and its mirror
    assert int(model.feature_norm.num_batches_tracked) >= 1
    assert model.feature_norm.weight.grad is not None
    cfg.head.feature_norm_stats = "layer"
    with pytest.raises(ConfigError, match="feature_norm_stats"):
        cfg.validate()


def test_scene_to_head_feeds_the_geometry_estimate_to_the_action_head():
    cfg = small_model_config(window=2, chunk=2, scene_aux=True)
    cfg.grounding.scene_to_head = True
    processor = processor_for(cfg)
    torch.manual_seed(0)
    model = MobileVLA(cfg, processor.vocab_size)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT])
    batch["scene"] = torch.rand(2, 2, len(SCENE_LABELS))
    batch["scene_mask"] = torch.ones(2, 2, dtype=torch.bool)
    losses, out = model.compute_losses(batch)
    assert out.fused.shape[-1] == model.num_slots * model.backbone.hidden_size + len(SCENE_LABELS)
    # the action loss alone reaches the scene head: the estimate is an input of the action head
    losses["loss_velocity_act"].backward()
    assert model.scene_head.weight.grad is not None and model.scene_head.weight.grad.abs().sum() > 0


def test_scene_to_head_needs_the_scene_head():
    cfg = small_model_config(window=2, chunk=2, scene_aux=False)
    cfg.grounding.scene_to_head = True
    with pytest.raises(ConfigError, match="scene_to_head"):
        cfg.validate()


def test_counterfactual_phases_limit_the_counterfactual_labels_to_their_frames():
    cfg = small_model_config(window=2, chunk=2, counterfactual_phases=["approach"])
    processor = processor_for(cfg)
    model = MobileVLA(cfg, processor.vocab_size)
    batch = synthetic_batch(processor, cfg, [LEFT, RIGHT, LEFT])
    scene = torch.zeros(3, 2, len(SCENE_LABELS))
    near, far = SCENE_LABELS.index("obstacle_near_x"), SCENE_LABELS.index("obstacle_far_x")
    # frame by frame: approaching (near face 1 m ahead), beside, past the far face
    for b, (n, f) in enumerate([(1.0, 1.5), (0.0, 0.4), (-1.5, -1.0)]):
        scene[b, :, near], scene[b, :, far] = n / SCENE_SCALE, f / SCENE_SCALE
    batch["scene"], batch["scene_mask"] = scene, torch.ones(3, 2, dtype=torch.bool)
    batch["scene_mask"][2, 1] = False  # a frame without geometry (a robot file) keeps its labels
    mask = model._counterfactual_mask(batch)
    assert mask[:, :, 0].tolist() == [[True, True], [False, False], [False, True]]
    # only the approaching frames' counterfactual labels move the loss
    base = model.compute_losses(batch)[0]["loss_counterfactual"]
    batch["cf_actions"][1] += 5.0
    batch["cf_actions"][2, 0] += 5.0
    assert torch.allclose(model.compute_losses(batch)[0]["loss_counterfactual"], base)
    batch["cf_actions"][0] += 5.0
    assert model.compute_losses(batch)[0]["loss_counterfactual"] > base
    cfg.grounding.counterfactual_phases = ["past"]
    with pytest.raises(ConfigError, match="counterfactual_phases"):
        cfg.validate()
