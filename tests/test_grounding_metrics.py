"""The diagnostic's numbers on hand-built cases."""

import numpy as np
import pytest

from mobile_vla.eval.grounding import grounding_metrics


def _demos(m=6, n=4):
    rng = np.random.default_rng(0)
    demo = rng.normal(size=(m, n, 2))
    demo_mirror = demo.copy()
    demo_mirror[..., 1] = -demo[..., 1] + np.sign(demo[..., 1]) * 0.0  # lateral mirrored
    return demo, demo_mirror, np.ones((m, n), bool)


def test_identical_predictions_give_ratio_zero():
    demo, demo_mirror, mask = _demos()
    ctx = np.ones((6, 1, 8))
    out = grounding_metrics(ctx, ctx, demo, demo, demo, demo_mirror, mask)
    assert out["flip_divergence_ratio"] == 0.0
    assert out["action_difference"] == 0.0
    assert out["context_cosine"] == pytest.approx(1.0)
    assert out["side_agreement"] == 0.0  # a zero difference never has the demonstrations' sign


def test_predictions_equal_to_demonstrations_give_ratio_one():
    demo, demo_mirror, mask = _demos()
    out = grounding_metrics(None, None, demo, demo_mirror, demo, demo_mirror, mask)
    assert out["flip_divergence_ratio"] == pytest.approx(1.0)
    assert out["side_agreement"] == 1.0
    assert "context_cosine" not in out


def test_swapped_predictions_disagree_on_side_and_mask_is_respected():
    demo, demo_mirror, mask = _demos()
    out = grounding_metrics(None, None, demo_mirror, demo, demo, demo_mirror, mask)
    assert out["side_agreement"] == 0.0
    mask[:, 1:] = False
    assert grounding_metrics(None, None, demo, demo, demo, demo_mirror, mask)["paired_steps"] == 6
    with pytest.raises(ValueError, match="counterfactual"):
        grounding_metrics(None, None, demo, demo, demo, demo_mirror, np.zeros_like(mask))


def test_orthogonal_contexts_have_zero_cosine():
    a = np.zeros((2, 4))
    b = np.zeros((2, 4))
    a[:, 0] = 1
    b[:, 1] = 1
    demo, demo_mirror, mask = _demos(2, 3)
    assert grounding_metrics(a, b, demo, demo, demo, demo_mirror, mask)["context_cosine"] == 0.0


def test_side_agreement_counts_side_choices_not_lane_keeping_nudges():
    demo, demo_mirror, mask = _demos()
    demo[..., 1], demo_mirror[..., 1] = 0.8, -0.8  # a side choice: 1.6 m/s apart laterally
    demo[:, 0, 1], demo_mirror[:, 0, 1] = 0.05, -0.05  # step 0: a 0.1 m/s lane-keeping nudge
    pred, pred_mirror = demo.copy(), demo_mirror.copy()
    pred[:, 0, 1], pred_mirror[:, 0, 1] = -0.05, 0.05  # the nudge predicted with the other sign
    out = grounding_metrics(None, None, pred, pred_mirror, demo, demo_mirror, mask)
    assert out["side_agreement"] == 1.0
    assert out["side_agreement_any"] == pytest.approx(0.75)  # 3 of 4 chunk steps agree


def test_scene_phase_reads_numpy_and_torch_alike_and_marks_unlabelled_frames():
    import torch

    from mobile_vla.vocab.scene import SCENE_LABELS, SCENE_SCALE, scene_phase

    scene = np.zeros((2, 3, len(SCENE_LABELS)), np.float32)
    scene[..., SCENE_LABELS.index("obstacle_near_x")] = np.array([1.5, 0.1, -0.9]) / SCENE_SCALE
    scene[..., SCENE_LABELS.index("obstacle_far_x")] = np.array([2.0, 0.5, -0.3]) / SCENE_SCALE
    labelled = np.array([[True, True, True], [True, False, True]])
    expected = [[0, 1, 2], [0, -1, 2]]
    assert scene_phase(scene, labelled).tolist() == expected
    phase = scene_phase(torch.from_numpy(scene), torch.from_numpy(labelled))
    assert isinstance(phase, torch.Tensor) and phase.tolist() == expected


def test_side_agreement_by_phase_splits_frames_by_their_place_relative_to_the_cluster():
    from mobile_vla.vocab.scene import cluster_phase

    # near/far faces of the cluster along the robot's x: ahead, level with the robot, behind it
    assert cluster_phase(np.array([1.5, 0.1, -0.9]), np.array([2.0, 0.5, -0.3])).tolist() == [0, 1, 2]
    assert cluster_phase(1.5, 2.0) == 0 and cluster_phase(-0.9, -0.3) == 2  # one frame's floats
    demo, demo_mirror, mask = _demos(m=3, n=2)
    demo[0], demo_mirror[0] = [0.0, 0.8], [0.0, -0.8]  # approach: the sideways move differs
    demo[1], demo_mirror[1] = [0.8, 0.0], [-0.8, 0.0]  # beside: keep going against backing out
    demo[2], demo_mirror[2] = [0.5, 0.1], [0.5, 0.1]  # after: both drive to the cup
    pred, pred_mirror = demo.copy(), demo_mirror.copy()
    pred[1], pred_mirror[1] = demo_mirror[1], demo[1]  # beside, the policy backs out of the instructed lane
    out = grounding_metrics(None, None, pred, pred_mirror, demo, demo_mirror, mask, phase=np.array([0, 1, 2]))
    assert out["side_agreement_by_phase"] == {"approach": 1.0, "beside": 0.0, "after": None}
    assert out["side_agreement_steps_by_phase"] == {"approach": 2, "beside": 2, "after": 0}
    assert out["side_agreement"] == 1.0  # the pooled lateral figure only sees the approach
    assert "side_agreement_by_phase" not in grounding_metrics(None, None, pred, pred_mirror, demo, demo_mirror, mask)
