"""The episode format: the robot's layouts, names, round trips, and one clear error per bad file."""

import numpy as np
import pytest

from data_fixtures import (
    BAD_CASES,
    frame_bgr,
    teleop_actions,
    write_bad_episode,
    write_real_episode,
    write_sim_episode,
)
from mobile_vla.data.episode import parse_episode_name, read_episode
from mobile_vla.errors import EpisodeError
from mobile_vla.vocab.instructions import canonical_instruction


@pytest.mark.parametrize("layout", ["images", "observations/images"])
@pytest.mark.parametrize("with_instruction", [True, False])
def test_reads_real_720p_layouts(tmp_path, layout, with_instruction):
    custom = "Navigate to the gray basket on the right"
    path = write_real_episode(tmp_path, side="right", layout=layout, with_instruction=with_instruction,
                              instruction=custom)
    ep = read_episode(path)
    assert ep.images.shape == (18, 720, 1280, 3) and ep.images.dtype == np.uint8
    np.testing.assert_array_equal(ep.images[5], frame_bgr(5))  # BGR as on disk
    np.testing.assert_array_equal(ep.actions, teleop_actions("right"))
    assert ep.event_types[0] == "episode_start" and len(ep.event_types) == 18
    # Without language_instruction the instruction comes from the file name's scenario.
    assert ep.instruction == (custom if with_instruction else canonical_instruction("right"))
    assert ep.side == "right"
    assert ep.attrs["num_frames"] == 18 and ep.attrs["collection_hour"] == 14


def test_read_without_images_keeps_shape(tmp_path):
    ep = read_episode(write_real_episode(tmp_path, num_frames=3), load_images=False)
    assert ep.images is None and ep.image_shape == (720, 1280, 3) and ep.num_frames == 3


def test_sim_round_trip_keeps_counterfactual_and_scene(tmp_path):
    path = write_sim_episode(tmp_path, scene_id=7, side="left")
    ep = read_episode(path)
    assert ep.attrs["scene_id"] == "scene0007"
    np.testing.assert_allclose(ep.counterfactual_actions, teleop_actions("right", 12) * 0.5)
    np.testing.assert_array_equal(ep.images[3], frame_bgr(3, (112, 112)))
    assert not list(tmp_path.glob("*.tmp"))  # the atomic write left no temporary behind


@pytest.mark.parametrize(
    "name, side, target",
    [
        ("episode_20251106_145248_1box_hori_left_core_medium.h5", "left", None),
        ("episode_20260129_010041_basket_2box_vert_right_variant_far.h5", "right", "basket"),
        ("episode_20260301_120000_target_left_right_path__core__fixed_center.h5", "right", None),
    ],
)
def test_parse_episode_name(name, side, target):
    scenario = parse_episode_name(name)
    assert scenario.side == side and scenario.target == target


@pytest.mark.parametrize("problem", sorted(BAD_CASES))
def test_each_bad_file_has_its_clear_error(tmp_path, problem):
    path = write_bad_episode(tmp_path, problem)
    key, pattern = BAD_CASES[problem]
    with pytest.raises(EpisodeError, match=pattern) as info:
        read_episode(path)
    assert info.value.file == str(path) and str(path) in str(info.value)
    assert info.value.key == key
