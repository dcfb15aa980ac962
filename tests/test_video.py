"""Rollout videos: H.264 / yuv420p MP4s with even dimensions, camera beside a top-down map."""

from __future__ import annotations

import numpy as np
import pytest

av = pytest.importorskip("av", reason="the ecosystem extra (av) is not installed")

from mobile_vla.data.video import read_frames, write_mp4  # noqa: E402
from mobile_vla.eval.rollout_video import PANEL, SIDE_RGB, write_rollout_video  # noqa: E402


def _record(side: str, steps: int) -> dict:
    ys = np.linspace(0, 0.8 if side == "left" else -0.8, steps + 1)
    return {"instruction": f"Go around the box on the {side} and reach the cup", "side": side, "success": True,
            "collision": False, "passed_side": side, "obstacles": [[2.5, 0.0, 0.3, 0.2]], "target_xy": [5.0, 0.0],
            "trajectory": [[0.4 * t, y, 0.0] for t, y in enumerate(ys)]}


def test_rollout_video_is_h264_yuv420p_with_both_panels(tmp_path):
    steps = 6
    frames = np.zeros((steps, 112, 112, 3), np.uint8)
    frames[..., 1] = 200  # a green camera image
    path = write_rollout_video(frames, _record("right", steps), tmp_path / "v.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.width % 2 == 0 and stream.height % 2 == 0
    decoded = [f for _, f in read_frames(path)]
    assert len(decoded) >= steps + 1  # every step, then the outcome held
    last = decoded[-1].astype(int)
    assert abs(last[PANEL // 2, PANEL // 2, 1] - 200) < 20  # left panel: the camera
    orange = np.array(SIDE_RGB["right"])
    path_pixels = np.abs(last[:, PANEL:] - orange).sum(-1) < 60  # right panel: the path in the side's colour
    assert path_pixels.sum() > 50


def test_odd_frames_are_padded_to_even(tmp_path):
    path = write_mp4([np.full((45, 61, 3), 90, np.uint8)] * 3, tmp_path / "odd.mp4", fps=2.5)
    (_, frame), *_ = list(read_frames(path))
    assert frame.shape == (46, 62, 3) and abs(int(frame.mean()) - 90) <= 3
