"""PNG figures for reports: training curves and the grounding diagnostic."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_scalars(log_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """All scalar series in the TensorBoard event files under ``log_dir``: tag → [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return {k: sorted(v) for k, v in series.items()}


def plot_training_curves(log_dir: str | Path, out: str | Path) -> Path | None:
    """Loss and true RMSE, train and validation, against the optimiser step."""
    series = read_scalars(log_dir)
    panels = [
        ("loss_velocity_act", "Huber loss (normalised)"),
        ("rmse", "velocity RMSE (m/s)"),
        ("flip_divergence_ratio", "flip divergence ratio"),
    ]
    panels = [(key, title) for key, title in panels if any(key in tag for tag in series)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for tag in sorted(t for t in series if key in t and "epoch" not in t):
            steps, values = zip(*series[tag])
            ax.plot(steps, values, label=tag, marker="." if len(steps) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_grounding(pred_gap: np.ndarray, demo_gap: np.ndarray, out: str | Path, title: str = "") -> Path:
    """Scatter of predicted vs demonstrated lateral difference (instruction − mirror), m/s.

    A grounded policy lies on the diagonal; an instruction-blind one on the horizontal axis.
    """
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    lim = float(max(np.abs(demo_gap).max(), np.abs(pred_gap).max(), 0.1)) * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="0.6", lw=1, ls="--", label="grounded (ratio 1)")
    ax.axhline(0, color="0.85", lw=1)
    ax.scatter(demo_gap, pred_gap, s=6, alpha=0.4)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("demonstrated Δ linear_y (m/s)")
    ax.set_ylabel("predicted Δ linear_y (m/s)")
    ax.set_title(title or "instruction flip: lateral action difference", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
