"""MP4 video in a codec browsers and LeRobot play: H.264, yuv420p, through PyAV.

PyAV (``av``) is imported inside the functions, so the rest of the package works without it;
``pip install 'mobile-vla[ecosystem]'`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from mobile_vla.errors import MobileVLAError

CODEC = "libx264"
PIX_FMT = "yuv420p"


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - the dependency is installed by `make test`
        raise MobileVLAError("MP4 video needs PyAV: pip install 'mobile-vla[ecosystem]' (or pip install av)") from None
    return av


def even_size(frame: np.ndarray) -> np.ndarray:
    """Pad ``(H, W, 3)`` with edge pixels to even H and W (yuv420p halves both for colour)."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else frame


class VideoWriter:
    """Append RGB frames ``(H, W, 3)`` uint8 to an MP4; ``keyframe=True`` starts a new GOP there.

    ``crf`` sets H.264 quality (0 lossless luma … 51 worst; 18 looks lossless on our frames).
    Written to a temporary file and renamed on :meth:`close`, so a crash leaves no half video.
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18):
        av = _av()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp.mp4")
        # +faststart puts the index first, so a browser starts playing before the file has arrived.
        self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._rate = Fraction(fps).limit_denominator(1000)
        self._stream = None
        self._crf = crf
        self.frames = 0

    def write(self, rgb: np.ndarray, keyframe: bool = False) -> None:
        av = _av()
        rgb = even_size(np.ascontiguousarray(rgb, dtype=np.uint8))
        if self._stream is None:
            self._stream = self._container.add_stream(CODEC, rate=self._rate)
            self._stream.height, self._stream.width = rgb.shape[:2]
            self._stream.pix_fmt = PIX_FMT
            # A keyframe at least every 2 s of video keeps seeking cheap.
            self._stream.options = {"crf": str(self._crf), "g": str(max(1, int(2 * self._rate)))}
        elif rgb.shape[:2] != (self._stream.height, self._stream.width):
            raise MobileVLAError(f"{self.path}: frame {self.frames} is {rgb.shape[:2]}, the video is "
                                 f"{(self._stream.height, self._stream.width)}")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self._rate
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        try:
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            if self.frames == 0:
                raise MobileVLAError(f"{self.path}: no frames to write")
            os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()
        return self.path


def write_mp4(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float, crf: int = 18) -> Path:
    """Frames ``(H, W, 3)`` RGB uint8 → an H.264 MP4 at ``path``."""
    writer = VideoWriter(path, fps, crf)
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        path = writer.close()
    return path


def read_frames(path: str | os.PathLike, start_s: float = 0.0, count: int | None = None) -> Iterator[
        tuple[float, np.ndarray]]:
    """``(time in s, (H, W, 3) RGB uint8)`` for ``count`` frames from ``start_s`` on (seeks to it)."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise MobileVLAError(f"{path}: video file not found")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise MobileVLAError(f"{path}: unreadable video ({exc})") from None
    with container:
        stream = container.streams.video[0]
        half_frame = 0.5 / float(stream.average_rate or 1)
        if start_s > 0:
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True, any_frame=False)
        n = 0
        for frame in container.decode(stream):
            t = float(frame.time)
            if t < start_s - half_frame:
                continue
            yield t, frame.to_ndarray(format="rgb24")
            n += 1
            if count is not None and n >= count:
                return
