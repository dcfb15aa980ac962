"""The ``lerobot`` episode format: HDF5 → LeRobotDataset v3.0 → HDF5, training from the export, bad datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="the ecosystem extra (pyarrow, av) is not installed")
pytest.importorskip("av", reason="the ecosystem extra (pyarrow, av) is not installed")

from data_fixtures import write_real_episode  # noqa: E402
from mobile_vla.cli import main  # noqa: E402
from mobile_vla.data.formats import list_episodes, read_episode  # noqa: E402
from mobile_vla.data.lerobot import ACTION_FEATURE_NAMES, CAMERA_KEY  # noqa: E402
from mobile_vla.errors import EpisodeError  # noqa: E402

LAYOUT = ["meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
          "data/chunk-000/file-000.parquet", f"videos/{CAMERA_KEY}/chunk-000/file-000.mp4"]


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """Four rendered simulator episodes (two scenes × two instructions), with counterfactual labels."""
    from mobile_vla.sim.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("sim")
    collect(CollectConfig(out=out, episodes=4, seed=5, image_size=64), progress=False)
    return out


@pytest.fixture(scope="module")
def exported(sim_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "ds"
    assert main(["data", "export", "--format", "lerobot", "--out", str(out), str(sim_dir)]) == 0
    return out


def test_export_writes_the_v3_layout(exported, sim_dir):
    for rel in LAYOUT:
        assert (exported / rel).is_file(), rel
    info = json.loads((exported / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == 2.5 and info["total_episodes"] == 4
    assert info["features"]["action"]["names"] == ACTION_FEATURE_NAMES
    assert info["features"]["action"]["units"] == ["m/s", "m/s", "rad/s"]
    for key in ("counterfactual_actions", "obstacles", "target", "scene_id", "side", CAMERA_KEY):
        assert key in info["features"], key
    import pyarrow.parquet as pq

    data = pq.read_table(exported / "data/chunk-000/file-000.parquet").to_pydict()
    assert data["index"] == list(range(info["total_frames"]))
    first = [i for i, e in enumerate(data["episode_index"]) if e == 0]
    assert np.allclose(data["timestamp"][first[1]] - data["timestamp"][first[0]], 0.4)


def test_round_trip_keeps_actions_instructions_and_frames(exported, sim_dir, tmp_path):
    back = tmp_path / "back"
    assert main(["data", "import", "--format", "lerobot", str(exported), "--out", str(back)]) == 0
    originals = sorted(sim_dir.glob("*.h5"))
    assert sorted(p.name for p in back.glob("*.h5")) == [p.name for p in originals]
    for src in originals:
        a, b = read_episode(src), read_episode(back / src.name)
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.counterfactual_actions, b.counterfactual_actions)
        assert a.instruction == b.instruction and a.event_types == b.event_types
        assert a.attrs["scene_id"] == b.attrs["scene_id"]
        assert np.array_equal(a.attrs["trajectory"], b.attrs["trajectory"])
        assert a.images.shape == b.images.shape
        mae = np.abs(a.images.astype(np.int16) - b.images.astype(np.int16)).mean()
        assert mae <= 3.0, (src.name, mae)
        # channel order survives: the video is RGB, the episode BGR, and a swap would move the means apart
        assert np.abs(a.images.mean((0, 1, 2)) - b.images.mean((0, 1, 2))).max() < 2.0


def test_training_reads_the_dataset_directory(exported, sim_dir):
    from data_fixtures import tiny_processor
    from mobile_vla.data.dataset import MobileVLAH5Dataset

    assert len(list_episodes(exported)) == 4
    processor = tiny_processor(image_size=64)
    kwargs = dict(window_size=2, fwd_pred_next_n=3, cache=False)
    from_h5 = MobileVLAH5Dataset(sim_dir, processor, **kwargs)
    from_lerobot = MobileVLAH5Dataset(exported, processor, **kwargs)
    assert len(from_lerobot) == len(from_h5)
    for rec in from_lerobot.records:  # the grounding losses' labels survive the export
        assert rec.counterfactual is not None and rec.scene is not None and rec.side in ("left", "right")
    item = from_lerobot[0]
    assert item["pixel_values"].shape == (2, 3, 64, 64)


def test_real_episode_without_counterfactuals_and_odd_size(tmp_path):
    src = write_real_episode(tmp_path / "real", side="right", num_frames=6, size=(45, 61))
    out = tmp_path / "ds"
    assert main(["data", "export", "--format", "lerobot", "--out", str(out), str(src)]) == 0
    [loc] = list_episodes(out)
    ep = read_episode(loc)
    assert ep.images.shape == (6, 45, 61, 3) and ep.counterfactual_actions is None
    assert np.array_equal(ep.actions, read_episode(src).actions) and ep.side == "right"


def _break(ds: Path, tmp_path: Path, how: str) -> tuple[Path, str]:
    broken = tmp_path / how
    shutil.copytree(ds, broken)
    info_path = broken / "meta/info.json"
    if how == "missing_info":
        info_path.unlink()
        return info_path, "meta/info.json"
    if how == "missing_tasks":
        (broken / "meta/tasks.parquet").unlink()
        return broken / "meta/tasks.parquet", "missing"
    if how == "action_shape":
        info = json.loads(info_path.read_text())
        info["features"]["action"]["shape"] = [7]
        info_path.write_text(json.dumps(info))
        return info_path, "action shape"
    if how == "action_rows":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = broken / "data/chunk-000/file-000.parquet"
        table = pq.read_table(path)
        wrong = pa.array([row[:2] for row in table["action"].to_pylist()], pa.list_(pa.float32()))
        pq.write_table(table.set_column(table.column_names.index("action"), "action", wrong), path)
        return path, "3 values per action"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing_info", "missing_tasks", "action_shape", "action_rows"])
def test_broken_dataset_errors_name_the_file(exported, tmp_path, how):
    bad_file, words = _break(exported, tmp_path, how)
    with pytest.raises(EpisodeError) as err:
        read_episode(tmp_path / how / "episode_000000")
    assert str(bad_file) in str(err.value) and words in str(err.value)
