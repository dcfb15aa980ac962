"""eval.failures: failed episodes are placed by outcome and by the phase where they ended."""

import pytest

from mobile_vla.eval.failures import failure_phases

# One box centred at x = 2 m (faces at 1.8 and 2.2), the cup at x = 4 m; the robot drives along +x.
BOX = [[2.0, 0.0, 0.2, 0.3]]


def _record(end_x: float, success=False, collision=False, wrong_target=False) -> dict:
    return {"trajectory": [[0.0, 0.6, 0.0], [end_x, 0.6, 0.0]], "obstacles": BOX, "target_xy": [4.0, 0.0],
            "success": success, "collision": collision, "wrong_target": wrong_target}


def test_failures_by_outcome_and_phase():
    records = [_record(4.0, success=True), _record(1.0, collision=True), _record(2.0, collision=True),
               _record(3.5), _record(3.0, wrong_target=True)]
    out = failure_phases(records)
    assert out["collision"] == {"approach": 0.2, "beside": 0.2, "after": 0.0, "unknown": 0.0}
    assert out["timeout"] == {"approach": 0.0, "beside": 0.0, "after": 0.2, "unknown": 0.0}
    assert out["wrong_target"]["after"] == 0.2
    assert sum(sum(p.values()) for p in out.values()) == pytest.approx(0.8)  # the failure rate


def test_records_without_geometry_count_as_unknown_phase():
    out = failure_phases([{"success": False, "collision": True, "trajectory": [[0, 0, 0]]}, _record(4.0, success=True)])
    assert out["collision"]["unknown"] == 0.5
    with pytest.raises(ValueError, match="no closed-loop records"):
        failure_phases([])
