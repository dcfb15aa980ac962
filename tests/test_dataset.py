"""MobileVLAH5Dataset: windows, chunks, colours, real tokens, augmentation, cache and split."""

import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import (
    LEFT_BGR,
    frame_bgr,
    teleop_actions,
    tiny_processor,
    write_bad_episode,
    write_real_episode,
    write_sim_episode,
    write_sim_pair,
)
from mobile_vla.data import cache as cache_module
from mobile_vla.data.augment import mirror_frames
from mobile_vla.data.dataset import MobileVLAH5Dataset, action_stats
from mobile_vla.data.split import split_episodes
from mobile_vla.errors import EpisodeError, MobileVLAError
from mobile_vla.vocab.actions import (
    CLASS_DIRECTIONS,
    IGNORE_INDEX,
    action_class,
    class_to_action,
    class_weights,
)
from mobile_vla.vocab.instructions import canonical_instruction, mirror_instruction

W, N = 8, 10


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    """Two 18-frame 720p episodes: left with instruction (``images``), right without, under ``observations/images``."""
    d = tmp_path_factory.mktemp("real")
    ramp = np.stack([np.linspace(0, 1.1, 18), -np.linspace(0, 1.1, 18), np.zeros(18)], 1).astype(np.float32)
    write_real_episode(d, side="left", actions=ramp)
    write_real_episode(d, side="right", layout="observations/images", with_instruction=False,
                       stamp="20251106_150000")
    return d


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


def pixels_to_rgb(processor, pixel_values: torch.Tensor) -> np.ndarray:
    """Undo normalisation: ``(..., 3, S, S)`` → ``(..., S, S, 3)`` float in 0..255."""
    mean = torch.tensor(processor.config.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.config.image_std).view(3, 1, 1)
    return ((pixel_values * std + mean) * 255).movedim(-3, -1).numpy()


def test_windows_and_chunks_line_up_with_actions(real_dir, processor):
    ds = MobileVLAH5Dataset(real_dir, processor, window_size=W, fwd_pred_next_n=N)
    assert len(ds) == 2 * (18 - W + 1)
    left = [i for i in range(len(ds)) if ds[i]["direction"] == 0]
    recorded = ds.records[0].actions  # the left episode (sorted first by name)
    for k, start in ((0, 0), (5, 5), (len(left) - 1, 18 - W)):
        item = ds[left[k]]
        assert item["pixel_values"].shape == (W, 3, 112, 112) and item["frame_mask"].all()
        actions = processor.unnormalize_actions(item["actions"].numpy())
        for w in range(W):
            t = start + w
            valid = min(N, 18 - t)
            assert item["action_mask"][w].tolist() == [True] * valid + [False] * (N - valid)
            np.testing.assert_allclose(actions[w, :valid], recorded[t : t + valid, :2], atol=1e-5)
            # Frame t of the episode sits at position w: its green channel encodes t.
            rgb = pixels_to_rgb(processor, item["pixel_values"][w])
            assert abs(rgb[..., 1].mean() - (100 + t)) < 1.0
            assert int(item["step_index"][w]) == t  # the head's step input (model.head.step_input)
            # model.head.odometry_input: the commands executed before frame t, each held 0.4 s
            # (the file's total_duration / num_frames)
            np.testing.assert_allclose(item["odometry"][w].numpy(), recorded[:t, :2].sum(0) * 0.4, atol=1e-5)
        assert (item["actions"][~item["action_mask"]] == 0).all()
        # window_frames names the episode and the newest frame of every window
        assert ds.window_frames()[left[k]] == (0, start + W - 1)
    assert [frame for ep, frame in ds.window_frames() if ep == 1] == list(range(W - 1, 18))


def test_colours_arrive_as_rgb(real_dir, processor):
    item = MobileVLAH5Dataset(real_dir, processor, window_size=2)[0]
    rgb = pixels_to_rgb(processor, item["pixel_values"][0])
    blue, red = LEFT_BGR
    # The left half was stored BGR (blue=10, red=200): channel 0 of the model input must be red.
    np.testing.assert_allclose(rgb[:, :40, 0].mean(), red, atol=1.0)
    np.testing.assert_allclose(rgb[:, :40, 2].mean(), blue, atol=1.0)


def test_items_carry_real_tokens_equal_to_the_collaters(real_dir, processor):
    ds = MobileVLAH5Dataset(real_dir, processor, window_size=W, fwd_pred_next_n=N)
    items = [ds[0], ds[len(ds) - 1]]
    assert {it["instruction"] for it in items} == {canonical_instruction("left"), canonical_instruction("right")}
    L = processor.sequence_length
    for it in items:
        assert it["input_ids"].shape == (L,) and it["input_ids"].dtype == torch.long
        expected = processor.tokenize(it["instruction"])
        for key, value in expected.items():
            assert torch.equal(it[key], value[0]), key
        side = "left" if "left" in it["instruction"] else "right"
        side_word = processor.tokenizer(" " + side, add_special_tokens=False)["input_ids"]  # as after a space
        assert len(side_word) == 1 and side_word[0] in it["input_ids"].tolist()  # the instruction is in the tokens
        assert int(it["attention_mask"].sum()) > 3 + processor.config.num_image_tokens + 5
        assert int(it["image_embeds_position_mask"].sum()) == processor.config.num_image_tokens
        assert torch.equal(it["cf_input_ids"], processor.tokenize(mirror_instruction(it["instruction"]))["input_ids"][0])
    assert not torch.equal(items[0]["input_ids"], items[1]["input_ids"])
    batch = ds.collater(items)
    for key in ("input_ids", "attention_mask", "image_embeds_position_mask", "action_token_mask", "cf_input_ids"):
        assert torch.equal(batch[key], torch.stack([it[key] for it in items])), key
    assert batch["pixel_values"].shape == (2, W, 3, 112, 112)
    assert batch["actions"].shape == (2, W, N, 2) and batch["action_mask"].shape == (2, W, N)
    assert batch["instruction"] == [it["instruction"] for it in items]
    assert batch["direction"].tolist() == [it["direction"].item() for it in items]


def test_collater_pads_token_rows_of_different_length(real_dir, processor):
    ds = MobileVLAH5Dataset(real_dir, processor, window_size=2)
    a, b = ds[0], ds[1]
    b = {**b, "input_ids": b["input_ids"][:-3], "attention_mask": b["attention_mask"][:-3]}
    batch = ds.collater([a, b])
    assert batch["input_ids"].shape == (2, processor.sequence_length)
    assert batch["input_ids"][1, -3:].tolist() == [processor.pad_id] * 3
    assert batch["attention_mask"][1, -3:].tolist() == [0] * 3


def test_no_processor_is_an_error_not_dummy_tokens(real_dir):
    with pytest.raises(MobileVLAError, match="Processor"):
        MobileVLAH5Dataset(real_dir, None)


def test_bad_file_raises_naming_the_file(tmp_path, processor):
    write_sim_episode(tmp_path, 1)
    bad = write_bad_episode(tmp_path, "nan_actions")
    with pytest.raises(EpisodeError, match=bad.name):
        MobileVLAH5Dataset(tmp_path, processor)


def test_short_episode_is_padded_and_masked(tmp_path, processor):
    write_sim_episode(tmp_path, 1, num_frames=5, with_counterfactual=False)
    ds = MobileVLAH5Dataset(tmp_path, processor, window_size=W, fwd_pred_next_n=3)
    assert len(ds) == 1
    item = ds[0]
    assert item["frame_mask"].tolist() == [True] * 5 + [False] * 3
    assert (item["pixel_values"][5:] == 0).all()
    assert item["action_mask"][:, 0].tolist() == [True] * 5 + [False] * 3
    assert item["action_mask"][3].tolist() == [True, True, False]
    assert not item["cf_action_mask"].any()  # no counterfactual labels in the file


def test_mirror_flips_image_words_and_lateral_actions(tmp_path, processor):
    path = write_sim_episode(tmp_path, 3, side="left")
    plain = MobileVLAH5Dataset([path], processor, window_size=4, fwd_pred_next_n=3)
    mirrored = MobileVLAH5Dataset([path], processor, window_size=4, fwd_pred_next_n=3, mirror_prob=1.0)
    a, m = plain[2], mirrored[2]
    assert m["instruction"] == mirror_instruction(a["instruction"]) and "right" in m["instruction"]
    assert (a["direction"].item(), m["direction"].item()) == (0, 1)
    assert torch.equal(m["input_ids"], a["cf_input_ids"]) and torch.equal(m["cf_input_ids"], a["input_ids"])
    assert torch.allclose(m["pixel_values"], a["pixel_values"].flip(-1))
    rec = plain.records[0]
    phys = lambda x: processor.unnormalize_actions(x.numpy())  # noqa: E731
    np.testing.assert_allclose(phys(m["actions"])[..., 0], phys(a["actions"])[..., 0], atol=1e-5)
    np.testing.assert_allclose(phys(m["actions"])[0, :, 1], -rec.actions[2:5, 1], atol=1e-5)
    # The mirrored episode's counterfactual labels are the mirror of the original's.
    np.testing.assert_allclose(phys(m["cf_actions"])[0, :, 1], -rec.counterfactual[2:5, 1], atol=1e-5)
    assert m["cf_action_mask"].all()
    assert a["odometry"][:, 1].abs().max() > 0.1  # the robot went sideways: the mirror went the other way
    torch.testing.assert_close(m["odometry"], a["odometry"] * torch.tensor([1.0, -1.0]))


def test_instruction_noise_edits_tokens_keeps_the_side_and_is_deterministic(tmp_path, processor):
    from mobile_vla.vocab.instructions import side_of

    path = write_sim_episode(tmp_path, 3, side="left")
    plain = MobileVLAH5Dataset([path], processor, window_size=2, fwd_pred_next_n=3, seed=4)
    noisy = MobileVLAH5Dataset([path], processor, window_size=2, fwd_pred_next_n=3, seed=4,
                               instruction_noise=1.0)
    items = [noisy[i] for i in range(len(noisy))]
    assert all(it["instruction"] != plain[0]["instruction"] for it in items)  # every item edited
    assert all(side_of(it["instruction"]) == "left" for it in items)
    assert noisy[1]["instruction"] == items[1]["instruction"]  # same seed and epoch: same edit
    for it in items:  # tokens are the noisy sentence's, and the counterfactual is its mirror
        assert torch.equal(it["input_ids"], processor.tokenize(it["instruction"])["input_ids"][0])
        assert torch.equal(it["cf_input_ids"], processor.tokenize(mirror_instruction(it["instruction"]))["input_ids"][0])
    assert torch.equal(items[0]["actions"], plain[0]["actions"])
    with pytest.raises(MobileVLAError, match="instruction_noise"):
        MobileVLAH5Dataset([path], processor, instruction_noise=1.5)


def test_counterfactual_targets_and_discrete_labels(tmp_path, processor):
    left, _ = write_sim_pair(tmp_path, 4)
    ds = MobileVLAH5Dataset([left], processor, window_size=3, fwd_pred_next_n=4, discrete_labels=True)
    item = ds[8]  # start 8 of 12 frames: chunks run past the end
    rec = ds.records[0]
    np.testing.assert_allclose(processor.unnormalize_actions(item["cf_actions"].numpy())[0],
                               rec.counterfactual[8:12, :2], atol=1e-5)
    labels = item["class_labels"]
    assert labels.shape == (3, 4) and labels.dtype == torch.long
    assert labels[0].tolist() == action_class(rec.actions[8:12]).tolist()
    assert (labels[~item["action_mask"]] == IGNORE_INDEX).all()


def test_color_jitter_is_deterministic_per_seed_and_epoch(tmp_path, processor):
    write_sim_episode(tmp_path, 5)
    ds = MobileVLAH5Dataset(tmp_path, processor, window_size=2, color_jitter=0.4, seed=1)
    plain = MobileVLAH5Dataset(tmp_path, processor, window_size=2)
    first = ds[0]["pixel_values"]
    assert torch.equal(first, ds[0]["pixel_values"])
    assert not torch.allclose(first, plain[0]["pixel_values"])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["pixel_values"])


def test_logs_tokenizer_and_image_size_once(tmp_path, caplog):
    write_sim_episode(tmp_path, 6)
    processor = tiny_processor(image_size=64)
    with caplog.at_level(logging.INFO, logger="mobile_vla.data.dataset"):
        MobileVLAH5Dataset(tmp_path, processor)
        MobileVLAH5Dataset(tmp_path, processor)
    lines = [r.getMessage() for r in caplog.records if "image_size=64" in r.getMessage()]
    assert len(lines) == 1 and "tokenizer=tiny" in lines[0]


def test_action_stats_collects_training_actions(tmp_path, processor):
    paths = write_sim_pair(tmp_path, 8)
    actions = action_stats(list(paths))
    assert actions.shape == (24, 3)
    both = action_stats(list(paths), include_mirrored=True)
    np.testing.assert_allclose(both[24:, 1], -actions[:, 1])
    ds = MobileVLAH5Dataset(list(paths), processor, mirror_prob=0.5)
    assert ds.all_actions().shape == (48, 3)


# ---------------------------------------------------------------- disk cache


def test_720p_frames_are_cached_and_invalidated(tmp_path, processor, monkeypatch):
    path = write_real_episode(tmp_path, num_frames=3)
    first = MobileVLAH5Dataset(tmp_path, processor, window_size=2).frames(0)
    entries = list((tmp_path / cache_module.CACHE_DIR).glob("*.npy"))
    assert len(entries) == 1 and entries[0].name.startswith(path.stem + ".rgb112.")
    assert first.shape == (3, 112, 112, 3) and first.dtype == np.uint8

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(cache_module, "decode_resized", no_decode)
    cache_module.forget_decoded()  # this process's memory would answer first: read the disk entry
    np.testing.assert_array_equal(MobileVLAH5Dataset(tmp_path, processor, window_size=2).frames(0), first)
    monkeypatch.undo()

    # Replace the source: different frames, same name. The old entry must not be used.
    write_real_episode(tmp_path, num_frames=4)
    again = MobileVLAH5Dataset(tmp_path, processor, window_size=2).frames(0)
    assert again.shape[0] == 4
    entries = list((tmp_path / cache_module.CACHE_DIR).glob("*.npy"))
    assert len(entries) == 1 and entries[0] != path  # the stale entry was removed
    assert not list((tmp_path / cache_module.CACHE_DIR).glob("*.tmp"))


def test_small_files_and_cache_off_skip_the_disk(tmp_path, processor):
    write_sim_episode(tmp_path / "sim", 1)
    MobileVLAH5Dataset(tmp_path / "sim", processor).frames(0)
    write_real_episode(tmp_path / "real", num_frames=2)
    MobileVLAH5Dataset(tmp_path / "real", processor, window_size=2, cache=False).frames(0)
    assert not list(tmp_path.rglob(cache_module.CACHE_DIR))
    np.testing.assert_array_equal(
        MobileVLAH5Dataset(tmp_path / "sim", processor).frames(0)[2],
        processor.resize_frame(frame_bgr(2, (112, 112)), "bgr"),
    )


def test_decoded_frames_are_shared_by_later_datasets_until_the_file_changes(tmp_path, processor):
    write_sim_pair(tmp_path, 0)
    first = MobileVLAH5Dataset(tmp_path, processor).frames(1)
    assert not first.flags.writeable  # shared: a dataset cannot alter another's pixels
    # e.g. the next DAgger round over the same files: the very same array, not decoded again
    again = MobileVLAH5Dataset(tmp_path, processor)
    assert again.frames(1) is first
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch refuses to wrap read-only arrays quietly
        assert torch.equal(again[len(again) - 1]["pixel_values"][-1], processor.normalize_resized(first[-1].copy()))
    write_sim_episode(tmp_path, 0, "right", num_frames=5)  # the file changes: decoded afresh
    assert MobileVLAH5Dataset(tmp_path, processor).frames(1).shape[0] == 5


def test_frame_memory_drops_the_least_recently_used_beyond_its_budget():
    memory = cache_module._FrameMemory(budget_bytes=250)
    a, b, c = (np.zeros(100, np.uint8) for _ in range(3))
    memory.put("a", a)
    memory.put("b", b)
    assert memory.get("a") is a  # now "b" is the least recently used
    memory.put("c", c)
    assert memory.get("b") is None and memory.get("a") is a and memory.get("c") is c
    memory.put("big", np.zeros(300, np.uint8))  # over the whole budget: not kept, nothing dropped
    assert memory.get("big") is None and memory.get("a") is a


def test_labels_are_read_once_per_file_version(tmp_path, monkeypatch):
    from mobile_vla.data import formats

    left, right = write_sim_pair(tmp_path, 0)
    reads = []
    read = formats.read_episode
    monkeypatch.setattr(formats, "read_episode", lambda p, load_images=True: reads.append(Path(p).name) or read(p, load_images))
    for _ in range(2):  # e.g. the split, then the dataset, of two DAgger rounds
        split_episodes([left, right], 0.5)
        ep = formats.read_labels(left)
    assert sorted(reads) == sorted([left.name, right.name])
    assert ep.images is None and not ep.actions.flags.writeable
    write_sim_episode(tmp_path, 0, "left", num_frames=5)
    assert formats.read_labels(left).num_frames == 5


# ---------------------------------------------------------------- split


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    """10 simulator pairs (scene_id) and 12 single real-format episodes (6 left, 6 right)."""
    d = tmp_path_factory.mktemp("split")
    for scene in range(10):
        write_sim_pair(d, scene, num_frames=2, size=16)
    for i in range(12):
        write_real_episode(d, side="left" if i % 2 else "right", num_frames=2, size=(8, 8),
                           stamp=f"20251106_{i:06d}")
    return sorted(d.glob("*.h5"))


def test_split_is_deterministic_grouped_and_stable(split_dir):
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone()
    train, val = split_episodes(split_dir, 0.2, seed=3)
    assert (train, val) == split_episodes(list(reversed(split_dir)), 0.2, seed=3)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert sorted(train + val) == sorted(split_dir) and not set(train) & set(val)

    def scene(p):
        return p.name.rsplit("_", 1)[-1] if p.stem.split("_")[-1].startswith("s") else None

    val_scenes = {scene(p) for p in val} - {None}
    assert val_scenes and not val_scenes & {scene(p) for p in train}  # pairs never cross the split
    assert sum(1 for p in val if scene(p)) == 2 * len(val_scenes)
    assert split_episodes(split_dir, 0.2, seed=4) != (train, val)
    # Adding episodes (a DAgger round) never moves an existing one to the other split.
    for subset in (split_dir[: len(split_dir) // 2], split_dir[::3]):
        sub_train, sub_val = split_episodes(subset, 0.2, seed=3)
        assert set(sub_val) <= set(val) and set(sub_train) <= set(train)


def test_split_edge_cases(split_dir):
    train, val = split_episodes(split_dir, 0.0, seed=0)
    assert val == [] and len(train) == len(split_dir)
    assert len(split_episodes(split_dir[:2], 0.01, seed=0)[1]) == 1
    with pytest.raises(MobileVLAError, match="val_fraction"):
        split_episodes(split_dir, 1.0, seed=0)


# ---------------------------------------------------------------- labels


def test_nine_classes_round_trip_and_threshold():
    directions = CLASS_DIRECTIONS * 1.15
    assert action_class(directions).tolist() == list(range(9))
    np.testing.assert_allclose(class_to_action(np.arange(9)), directions)
    assert action_class(np.array([[0.29, -0.29], [0.31, 0.0], [0.0, -0.31]])).tolist() == [0, 1, 4]
    assert action_class(teleop_actions("left"))[0] == 0  # the start frame is "stop"


def test_class_weights_inverse_frequency():
    w = class_weights(np.array([1, 1, 1, 3, IGNORE_INDEX]))
    assert w[0] == 0 and w[1] < w[3] and np.isclose(w[[1, 3]].mean(), 1.0)
    assert np.isclose(w[3] / w[1], 3.0)


def test_mirror_frames_numpy_and_torch_agree():
    frames = np.stack([frame_bgr(0, (4, 6)), frame_bgr(1, (4, 6))])
    flipped = mirror_frames(frames)
    assert tuple(flipped[0, 0, 0]) == tuple(frames[0, 0, -1]) and flipped.flags.c_contiguous
    chw = torch.from_numpy(frames).movedim(-1, -3)
    assert torch.equal(mirror_frames(chw), torch.from_numpy(flipped).movedim(-1, -3))


def test_items_need_fitted_action_stats(tmp_path):
    write_sim_episode(tmp_path, 9)
    processor = tiny_processor()
    processor.config.action_stats = None
    ds = MobileVLAH5Dataset(tmp_path, processor)  # construction is fine: stats are fitted after
    with pytest.raises(MobileVLAError, match="action statistics"):
        ds[0]
    processor.fit_action_stats(ds.all_actions())
    assert ds[0]["actions"].abs().max() <= 1.0


def test_works_with_a_dataloader(tmp_path, processor):
    write_sim_pair(tmp_path, 10, num_frames=10)
    ds = MobileVLAH5Dataset(tmp_path, processor, window_size=4, fwd_pred_next_n=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=ds.collater, num_workers=1)
    batches = list(loader)
    assert sum(len(b["episode_id"]) for b in batches) == len(ds) == 14
    assert batches[0]["pixel_values"].shape == (4, 4, 3, 112, 112)


def test_split_never_sends_every_group_to_validation(tmp_path, monkeypatch):
    from mobile_vla.data import split

    paths = [write_sim_pair(tmp_path, scene_id=i)[0] for i in range(2)]
    monkeypatch.setattr(split, "group_draw", lambda group, seed: 0.0)  # every group draws "validation"
    train, val = split.split_episodes(paths, 0.25)
    assert len(train) == 1 and len(val) == 1


def test_simulator_odometry_is_the_displacement_in_the_start_frame():
    from mobile_vla.data.odometry import episode_odometry

    yaw = 0.3  # the robot starts turned left: its forward axis is rotated by 0.3 rad in the world
    forward, left = np.array([np.cos(yaw), np.sin(yaw)]), np.array([-np.sin(yaw), np.cos(yaw)])
    world = np.array([[0.0, 0.0], forward, forward + 2 * left, 3 * forward + 2 * left])
    trajectory = np.concatenate([world + [1.0, -2.0], np.full((4, 1), yaw)], 1)  # (T+1, 3), T = 3
    odometry = episode_odometry({"trajectory": trajectory}, np.zeros((3, 3), np.float32))
    np.testing.assert_allclose(odometry, [[0, 0], [1, 0], [1, 2]], atol=1e-6)  # frames 0..2: before each action
    # without a trajectory the recorded commands are integrated (default period 0.4 s)
    commands = np.array([[1.0, 0.5, 0.0], [1.0, -0.5, 0.0], [0.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(episode_odometry({}, commands), [[0, 0], [0.4, 0.2], [0.8, 0.0]], atol=1e-6)
    np.testing.assert_allclose(episode_odometry({"total_duration": 3.0}, commands)[-1], [2.0, 0.0], atol=1e-6)
