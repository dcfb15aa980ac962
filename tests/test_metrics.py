"""Evaluation metrics on hand-built inputs with known answers; NaN at a valid step is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_vla.eval.grounding import grounding_metrics
from mobile_vla.eval.offline import action_metrics
from mobile_vla.sim.evaluate import summarize
from mobile_vla.sim.rollout import RolloutResult


def paired(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict:
    return {"pred": pred, "target": target, "mask": mask}


def test_action_metrics_known_answers():
    # 2 windows x 2 chunk steps; errors (0.3, -0.4) everywhere except one masked step (ignored)
    target = np.array([[[1.15, 0.0], [1.15, 0.0]], [[0.0, 1.15], [0.0, 1.15]]])
    pred = target + np.array([0.3, -0.4])
    mask = np.array([[True, True], [True, False]])
    pred[1, 1] = [np.nan, 99.0]  # padding: outside the mask, must not matter
    out = action_metrics(paired(pred, target, mask))
    assert out["chunk"]["mae"] == pytest.approx({"linear_x": 0.3, "linear_y": 0.4})
    assert out["chunk"]["rmse"] == pytest.approx({"linear_x": 0.3, "linear_y": 0.4})
    assert out["chunk"]["rmse_overall"] == pytest.approx(np.sqrt((0.09 + 0.16) / 2))
    assert out["frames"] == 2
    assert out["direction_agreement"] == 1.0  # the one lateral label (1.15) and its prediction (0.75) agree
    # (1.45, -0.4) is forward-right where the label is forward; (0.3, 0.75) is still left
    assert out["class_agreement"] == 0.5


def test_action_metrics_reject_nan_at_a_valid_step():
    target = np.zeros((2, 2, 2))
    pred = np.zeros((2, 2, 2))
    pred[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="pred: 1 valid steps are not finite"):
        action_metrics(paired(pred, target, np.ones((2, 2), bool)))
    target[1, 0, 1] = np.inf
    with pytest.raises(ValueError, match="target"):
        action_metrics(paired(np.zeros((2, 2, 2)), target, np.ones((2, 2), bool)))


def test_grounding_known_answer_and_nan_rejected():
    demo = np.zeros((4, 1, 2))
    demo[:, 0, 1] = 1.0  # left: +1 m/s lateral
    demo_mirror = -demo
    pred, pred_mirror = 0.5 * demo, 0.5 * demo_mirror  # half the demonstrations' split, right sign
    out = grounding_metrics(None, None, pred, pred_mirror, demo, demo_mirror, np.ones((4, 1), bool))
    assert out["flip_divergence_ratio"] == pytest.approx(0.5)
    assert out["action_difference"] == pytest.approx(0.5)  # mean |(0, 1)| per element
    assert out["side_agreement"] == 1.0
    pred[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match="pred: 1 valid steps are not finite"):
        grounding_metrics(None, None, pred, pred_mirror, demo, demo_mirror, np.ones((4, 1), bool))


def rollout(side: str, success: bool, collision: bool, passed: str | None, steps: int) -> RolloutResult:
    z = np.zeros((steps, 3), np.float32)
    return RolloutResult(instruction="", side=side, poses=np.zeros((steps + 1, 3)), executed=z, labels=z,
                         counterfactual=z, frames=None, expert_executed=np.zeros(steps, bool), success=success,
                         collision=collision, timeout=not (success or collision), passed_side=passed)


def test_closed_loop_summary_known_answers():
    results = [rollout("left", True, False, "left", 10), rollout("left", False, True, "right", 4),
               rollout("right", True, False, "left", 20), rollout("right", False, False, None, 30)]
    out = summarize(results)
    assert out == {"episodes": 4, "success_rate": 0.5, "side_accuracy": 0.25, "collision_rate": 0.25,
                   "timeout_rate": 0.25, "mean_steps": 16.0, "success_side_accuracy": 0.5,
                   "wrong_target_rate": 0.0, "success_on_side_rate": 0.25}  # only the first succeeded on its side
    with pytest.raises(ValueError, match="no rollouts"):
        summarize([])
