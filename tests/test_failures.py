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


def test_goal_side_is_the_side_of_the_cluster_centre_line_the_goal_lies_on():
    import dataclasses

    from mobile_vla.sim.scene import scene_seed
    from mobile_vla.sim.scene_varied import sample_varied_scene
    from mobile_vla.sim.suggested import goal_side

    scene = sample_varied_scene(scene_seed(0, 3))
    _, _, y_min, y_max = scene.obstacle_bounds
    centre = (y_min + y_max) / 2
    assert goal_side(scene, (4.0, centre + 0.05)) == "left"  # +y is the robot's left
    assert goal_side(scene, (4.0, centre - 0.05)) == "right"
    assert goal_side(dataclasses.replace(scene, boxes=()), (4.0, 0.0)) is None


def test_by_goal_side_splits_sided_episodes_by_where_the_goal_lay():
    from types import SimpleNamespace

    from mobile_vla.eval.closed_loop import by_goal_side

    def result(side, success):
        return SimpleNamespace(side=side, success=success, passed_side=side, collision=not success,
                               timeout=False, wrong_target=False, steps=10)

    results = [result("left", True), result("right", False), result("left", True), result(None, True)]
    records = [{"goal_side": "left"}, {"goal_side": "left"}, {"goal_side": None}, {"goal_side": "right"}]
    groups = by_goal_side(results, records)
    assert groups["instructed"]["episodes"] == 1 and groups["instructed"]["success_rate"] == 1.0
    assert groups["other"]["episodes"] == 1 and groups["other"]["collision_rate"] == 1.0
    assert by_goal_side(results[2:], records[2:]) == {"instructed": None, "other": None}  # no boxes; no side
