"""Where closed-loop episodes fail: the outcome and the robot's last phase relative to the cluster.

A reactive (window 1) policy loses sight of the boxes beside the cluster and of the cup when it
leaves the view; failures that end *beside* or *after* the cluster are where a window of history
can help, failures on the *approach* are not. Phases are those of the grounding metrics
(:data:`mobile_vla.vocab.scene.PHASES`), from the last pose of the episode's record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from mobile_vla.data.scene_labels import scene_labels
from mobile_vla.vocab.scene import PHASES, cluster_phase

OUTCOMES = ("collision", "timeout", "wrong_target")
UNKNOWN = "unknown"  # no cluster geometry in the record


def _last_phase(record: dict[str, Any]) -> str:
    poses = np.asarray(record.get("trajectory", []), np.float64)
    labels = scene_labels(record, len(poses))
    if labels is None:  # a task without an obstacle cluster, or a record without its geometry
        return UNKNOWN
    near, far = labels[-1, 4], labels[-1, 5]  # the cluster's near and far faces, robot frame
    return PHASES[int(cluster_phase(near, far))]


def failure_phases(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{outcome: {phase: fraction of all episodes}}`` for the failed ones (see module docstring).

    ``records``: closed-loop records (``RolloutResult.to_record``). Fractions are of all episodes,
    so a table row adds up to the failure rate. Phases are :data:`PHASES` and ``unknown`` (records
    without an obstacle cluster).
    """
    records = list(records)
    if not records:
        raise ValueError("no closed-loop records")
    counts = {o: dict.fromkeys((*PHASES, UNKNOWN), 0) for o in OUTCOMES}
    for r in records:
        if r["success"]:
            continue
        outcome = "collision" if r["collision"] else "wrong_target" if r.get("wrong_target") else "timeout"
        counts[outcome][_last_phase(r)] += 1
    return {o: {p: n / len(records) for p, n in phases.items()} for o, phases in counts.items()}
