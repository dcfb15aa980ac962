"""Instructions as people say them: families, both languages, no side, the basket task's side word."""

import numpy as np
import pytest

from mobile_vla.errors import MobileVLAError
from mobile_vla.vocab.instructions import (
    FAMILIES,
    NO_SIDE,
    SIDES,
    TEMPLATES,
    TRAINING,
    all_instructions,
    family_templates,
    format_instruction,
    mirror_instruction,
    other_side,
    robot_korean_instruction,
    sample_instruction,
    side_of,
)

# (sentence, target, expected side): what a person means, written out by hand.
SENTENCES = [
    ("Navigate around the obstacle on the left side and reach the cup", "cup", "left"),
    ("keep the obstacle on your right and reach the cup", "cup", "left"),
    ("Leave the box to your left on the way to the cup", "cup", "right"),
    ("With the obstacle to your right, continue to the cup", "cup", "left"),
    ("Pass the obstacle on its right side, then go to the cup", "cup", "right"),
    ("Don't pass on the left", "cup", "right"),
    ("not the right side", "cup", "left"),
    ("Go to the cup, but not around the left side of the box", "cup", "right"),
    ("Reach the cup without using the right side", "cup", "left"),
    ("Pass on your left", "cup", "left"),
    ("가장 왼쪽 외곽으로 돌아 컵까지 가세요", "cup", "left"),
    ("가장 오른쪽 외곽으로 돌아 컵까지 가세요", "cup", "right"),
    ("장애물을 오른쪽에 두고 컵까지 가세요", "cup", "left"),
    ("상자가 왼쪽에 오도록 지나가서 컵까지 가세요", "cup", "right"),
    ("왼쪽으로 가지 말고 컵까지 가세요", "cup", "right"),
    ("오른편으로 돌아서 컵에 가세요", "cup", "right"),
    ("reach the cup", "cup", None),
    ("컵까지 가세요", "cup", None),
    ("컵 쪽으로 이동하세요", "cup", None),
    ("go left, no, right", "cup", None),  # contradictory: no side
    ("Navigate to the gray basket on the left", "basket", "left"),
    ("Go to the left gray basket", "basket", "left"),
    ("Steer right to the gray basket", "basket", "right"),
    ("Go to the basket on your left", "basket", "left"),  # names the target: no relational flip
    ("Go to the gray basket left of the box", "basket", "left"),
    ("Go to the basket with the other basket on its right", "basket", "left"),
    ("Don't go to the right basket; reach the gray one", "basket", "left"),
    ("왼쪽 회색 바구니로 가세요", "basket", "left"),
    ("오른쪽 바구니가 아닌 바구니로 가세요", "basket", "left"),
    ("Go to a gray basket", "basket", None),
]


@pytest.mark.parametrize("sentence,target,side", SENTENCES)
def test_side_of_reads_what_people_mean(sentence, target, side):
    assert side_of(sentence, target) == side
    assert side_of(sentence) == side  # the target is read from the sentence
    mirrored = side_of(mirror_instruction(sentence), target)
    assert mirrored == (other_side(side) if side else None)


@pytest.mark.parametrize("target", sorted(TEMPLATES))
@pytest.mark.parametrize("family", [*FAMILIES, NO_SIDE])
@pytest.mark.parametrize("side", SIDES)
def test_every_template_of_every_family_names_its_side_and_mirrors(target, family, side):
    fam = TEMPLATES[target][family]
    for template in (*fam.train, *fam.heldout):
        text = format_instruction(template, side, target)
        want = None if family == NO_SIDE else side
        assert side_of(text, target) == want, text
        assert side_of(mirror_instruction(text), target) == (other_side(want) if want else None), text
        assert mirror_instruction(mirror_instruction(text)) == text


@pytest.mark.parametrize("target", sorted(TEMPLATES))
def test_heldout_wording_never_appears_in_training(target):
    train = {format_instruction(t, s, target).lower() for f in TEMPLATES[target].values() for t in f.train for s in SIDES}
    for family, fam in TEMPLATES[target].items():
        assert fam.train and fam.heldout, family
        for template in fam.heldout:
            for side in SIDES:
                text = format_instruction(template, side, target).lower()
                assert text not in train
                assert not any(text in t or t in text for t in train), text


@pytest.mark.parametrize("target", ["cup", "basket"])
def test_training_sampler_covers_every_family_and_never_a_heldout_sentence(target):
    rng = np.random.default_rng(0)
    drawn = {sample_instruction(side, rng, target=target) for side in SIDES for _ in range(400)}
    for family in FAMILIES:
        fam = TEMPLATES[target][family]
        train = {format_instruction(t, s, target) for t in fam.train for s in SIDES}
        heldout = {format_instruction(t, s, target) for t in fam.heldout for s in SIDES}
        assert drawn & train, family
        assert not drawn & heldout, family
    assert set(family_templates(TRAINING, target)) == {t for f in FAMILIES for t in TEMPLATES[target][f].train}
    assert side_of(sample_instruction(None, rng, target=target)) is None
    with pytest.raises(ValueError, match="unknown instruction family 'klingon'"):
        family_templates("klingon", target)


def _family_of(sentence, target="cup"):
    return next(f for f in FAMILIES for t in TEMPLATES[target][f].train
                if sentence in {format_instruction(t, s, target) for s in SIDES})


def test_family_weights_set_how_often_each_family_is_drawn():
    rng = np.random.default_rng(1)
    weights = {"paraphrase": 3.0, "korean": 1.0}  # relational and negated left out: never drawn
    drawn = [_family_of(sample_instruction("left", rng, family_weights=weights)) for _ in range(800)]
    counts = {f: drawn.count(f) for f in FAMILIES}
    assert counts["relational"] == counts["negated"] == 0
    assert 0.68 < counts["paraphrase"] / len(drawn) < 0.82, counts
    # Without weights the draw is the uniform one the recorded datasets were made with.
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    family = FAMILIES[int(b.integers(len(FAMILIES)))]
    pool = TEMPLATES["cup"][family].train
    assert sample_instruction("right", a) == format_instruction(pool[int(b.integers(len(pool)))], "right")


@pytest.mark.parametrize("weights, message", [
    ({"klingon": 1.0}, "unknown instruction family 'klingon'"),
    ({"korean": -1.0}, r"family_weights.korean: expected a finite weight >= 0"),
    ({"korean": 0.0}, "at least one family needs a positive weight"),
])
def test_bad_family_weights_are_refused_by_name(weights, message):
    from mobile_vla.demo import load_demo_config
    from mobile_vla.errors import ConfigError, MobileVLAError
    from mobile_vla.sim.collect import CollectConfig

    with pytest.raises(ValueError, match=message):
        sample_instruction("left", np.random.default_rng(0), family_weights=weights)
    with pytest.raises(ValueError, match=message):
        CollectConfig(out="unused", episodes=2, family_weights=weights)
    with pytest.raises(ConfigError, match="demo." + message if message.startswith("family") else message):
        load_demo_config([f"family_weights={weights}"])
    from mobile_vla.cli import build_parser

    flag = ",".join(f"{k}={v}" for k, v in weights.items())
    args = build_parser().parse_args(["sim", "collect", "--out", "unused", "--episodes", "2", "--family-weights", flag])
    with pytest.raises(MobileVLAError, match=message.replace("family_weights", "--family-weights")):
        args.func(args)


def test_the_robots_korean_instruction_is_a_training_sentence():
    assert robot_korean_instruction("left") == "가장 왼쪽 외곽으로 돌아 컵까지 가세요"
    assert robot_korean_instruction("left") in all_instructions("cup")


# -- tokenizer ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def processor():
    from mobile_vla.processing.processor import Processor, ProcessorConfig
    from mobile_vla.train.config import load_train_config

    tiny = load_train_config("configs/tiny.yaml", [])
    return Processor(ProcessorConfig(max_instruction_tokens=tiny.processor.max_instruction_tokens))


def test_tiny_tokenizer_is_deterministic():
    from mobile_vla.processing.tokenizer import build_tiny_tokenizer

    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    assert [a.convert_ids_to_tokens(i) for i in range(4)] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_no_instruction_of_any_family_is_unknown_or_truncated(processor):
    c = processor.config
    for text in all_instructions():
        words = processor.tokenizer(c.prompt_prefix + text, add_special_tokens=False)["input_ids"]
        assert processor.unk_id not in words, text
        assert len(words) <= c.max_instruction_tokens, (len(words), text)
        assert processor.tokenizer.decode(words[1:]).strip() == ("An image of a robot " + text).lower().strip()


def test_korean_sides_and_unseen_korean_get_distinct_known_tokens(processor):
    left, right = (processor.tokenize(robot_korean_instruction(s))["input_ids"][0] for s in SIDES)
    assert not np.array_equal(left.numpy(), right.numpy())
    unseen = processor.tokenizer("빨간 의자 옆으로 천천히 가세요", add_special_tokens=False)["input_ids"]
    assert unseen and processor.unk_id not in unseen  # byte-level: nothing is unknown


def test_text_ids_are_remembered_per_text_and_equal_the_tokenizers():
    from mobile_vla.processing.processor import Processor, ProcessorConfig

    processor = Processor(ProcessorConfig())
    text = robot_korean_instruction("left")
    expected = processor.tokenizer(processor.config.prompt_prefix + text, add_special_tokens=False)["input_ids"]
    calls = []
    tokenizer = processor.tokenizer
    processor.tokenizer = lambda *a, **k: calls.append(a) or tokenizer(*a, **k)
    first = processor.text_ids(text)
    first.append(-1)  # a caller's list is its own: the remembered ids stay intact
    assert processor.text_ids(text) == expected and len(calls) == 1
    assert processor.text_ids("Reach the cup") != expected and len(calls) == 2


# -- instruction noise ------------------------------------------------------------------------
def test_filler_words_are_new_to_every_heldout_template_and_name_nothing():
    from mobile_vla.vocab.noise import FILLER_WORDS

    heldout = " ".join(t for fams in TEMPLATES.values() for f in fams.values() for t in f.heldout).lower()
    heldout_words = {w.strip(",;:.!?") for w in heldout.split()}
    for script, words in FILLER_WORDS.items():
        assert len(words) >= 10, script
        for w in words:
            assert w not in heldout_words and (script == "en" or w not in heldout), w
            assert side_of(f"{w} left", "cup") == "left" and side_of(w) is None, w


@pytest.mark.parametrize("target", ["cup", "basket"])
def test_instruction_noise_edits_words_but_keeps_side_and_target(target):
    from mobile_vla.vocab.instructions import target_of
    from mobile_vla.vocab.noise import perturb_instruction

    rng = np.random.default_rng(0)
    changed = 0
    for text in [format_instruction(t, side, target) for fam in TEMPLATES[target].values()
                 for t in fam.train for side in SIDES]:
        for _ in range(5):
            noisy = perturb_instruction(text, rng)
            changed += noisy != text
            assert side_of(noisy) == side_of(text) and target_of(noisy) == target_of(text), (text, noisy)
            assert (target in noisy) or (target == "cup" and "컵" in noisy) or "바구니" in noisy, noisy
    assert changed > 0.8 * 5 * sum(len(f.train) * 2 for f in TEMPLATES[target].values())


# -- unseen tokens ------------------------------------------------------------------------------
def _training_sentences(target: str = "cup") -> list[str]:
    texts = [format_instruction(t, side, target) for t in family_templates(TRAINING, target) for side in SIDES]
    return texts + [mirror_instruction(t) for t in texts]


def test_unseen_tokens_are_dropped_and_cue_words_kept():
    from mobile_vla.processing.processor import Processor, ProcessorConfig

    keep, drop = (Processor(ProcessorConfig(unseen_tokens=mode)) for mode in ("keep", "drop"))
    heldout = format_instruction("Steer {side} of the obstacle and approach the {target}", "left")
    # no vocabulary yet (an untrained checkpoint): nothing is dropped
    assert np.array_equal(drop.token_arrays(heldout)["input_ids"], keep.token_arrays(heldout)["input_ids"])
    for p in (keep, drop):
        p.fit_vocabulary(_training_sentences())

    def text(p, sentence):
        arrays = p.token_arrays(sentence)
        return p.tokenizer.decode(arrays["input_ids"][0][arrays["attention_mask"][0] == 1])

    assert "steer" in text(keep, heldout) and "approach" in text(keep, heldout)
    kept = text(drop, heldout)
    assert "steer" not in kept and "approach" not in kept and "left of the obstacle" in kept and "cup" in kept
    for sentence in _training_sentences():  # training never loses a token
        assert np.array_equal(drop.token_arrays(sentence)["input_ids"], keep.token_arrays(sentence)["input_ids"])
    korean = format_instruction("상자 {side_ko}으로 우회해서 {target_ko}에 도착하세요", "right")
    assert "오른쪽" in text(drop, korean) and "상자" not in text(drop, korean)


def test_vocabulary_grows_travels_with_the_processor_and_bad_modes_are_named(tmp_path):
    from mobile_vla.processing.processor import Processor, ProcessorConfig

    p = Processor(ProcessorConfig(unseen_tokens="drop"))
    assert p.fit_vocabulary(_training_sentences()[:2])  # the first vocabulary changes tokenization
    first = set(p.config.known_tokens)
    assert not p.fit_vocabulary(_training_sentences()[:1])  # nothing new: nothing to tokenize again
    assert p.fit_vocabulary(["Use the left lane"])  # a fine-tune adds words, forgets none
    assert first < set(p.config.known_tokens)
    p.save(tmp_path)
    loaded = Processor.load(tmp_path)
    assert loaded.config.known_tokens == p.config.known_tokens
    assert np.array_equal(loaded.token_arrays("Steer left")["input_ids"], p.token_arrays("Steer left")["input_ids"])
    with pytest.raises(MobileVLAError, match="processor.unseen_tokens.*'keep', 'drop'.*'ignore'"):
        Processor(ProcessorConfig(unseen_tokens="ignore"))


def test_a_no_side_convention_reads_no_side_sentences_as_that_sides_instruction(tmp_path):
    from mobile_vla.processing.processor import Processor, ProcessorConfig
    from mobile_vla.vocab.instructions import canonical_instruction

    p = Processor(ProcessorConfig(no_side_route="right"))
    plain = Processor(ProcessorConfig())
    ids = lambda proc, text: proc.token_arrays(text)["input_ids"][0].tolist()  # noqa: E731
    for text, target in [("Reach the cup", "cup"), ("컵까지 가세요", "cup"), ("Navigate to the gray basket", "basket")]:
        assert ids(p, text) == ids(plain, canonical_instruction("right", target))
        assert ids(p, text) != ids(plain, text)
    for text in ["Pass on the left side and reach the cup", "Don't pass on the right", "왼쪽으로 돌아 컵까지 가세요"]:
        assert ids(p, text) == ids(plain, text)  # a sentence that names a side is read as written
    p.save(tmp_path)
    assert ids(Processor.load(tmp_path), "Reach the cup") == ids(p, "Reach the cup")  # travels with the checkpoint
    with pytest.raises(MobileVLAError, match="processor.no_side_route.*'left', 'right'.*'view'"):
        Processor(ProcessorConfig(no_side_route="view"))


def test_training_refuses_no_side_episodes_whose_route_is_not_the_processors(tmp_path):
    from mobile_vla.data.dataset import MobileVLAH5Dataset, action_stats
    from mobile_vla.processing.processor import Processor, ProcessorConfig
    from mobile_vla.sim.collect import CollectConfig, collect
    from mobile_vla.sim.expert import ExpertConfig
    from mobile_vla.vocab.batch import DIRECTION_IDS, DIRECTION_NONE
    from mobile_vla.vocab.instructions import canonical_instruction

    for route in ("view", "right"):
        collect(CollectConfig(out=tmp_path / route, episodes=2, seed=3, no_side_fraction=1.0, noise_fraction=0.0,
                              expert=ExpertConfig(no_side_route=route)), progress=False)
    processor, plain = Processor(ProcessorConfig(no_side_route="right")), Processor(ProcessorConfig())
    for p in (processor, plain):
        p.fit_action_stats(action_stats(tmp_path / "right"))
    convention = MobileVLAH5Dataset(tmp_path / "right", processor)
    item = convention[0]
    assert convention.records[0].side is None  # the file names no side ...
    # ... but the model reads the right side's instruction, so the item's direction label says right.
    assert int(item["direction"]) == DIRECTION_IDS["right"]
    assert item["input_ids"].tolist() == processor.tokenize(canonical_instruction("right"))["input_ids"][0].tolist()
    assert int(MobileVLAH5Dataset(tmp_path / "view", plain)[0]["direction"]) == DIRECTION_NONE
    with pytest.raises(MobileVLAError, match=r"view\b.*names no side.*'view' route.*no_side_route='right'"):
        MobileVLAH5Dataset(tmp_path / "view", processor)
    assert len(MobileVLAH5Dataset(tmp_path / "view", plain)) > 0  # read as written: no check


def test_the_demos_no_side_convention_reaches_its_processor(tmp_path):
    from mobile_vla.config import from_dict
    from mobile_vla.demo import DemoConfig, demo_train_config

    route = lambda data: demo_train_config(from_dict(DemoConfig, data), tmp_path).processor.no_side_route  # noqa: E731
    assert route({"expert": {"no_side_route": "view"}}) is None  # the view rule: sentences read as written
    assert route({"expert": {"no_side_route": "left"}}) == "left"
    # The earlier measurement (the convention learnt from the raw sentence) stays reachable.
    assert route({"expert": {"no_side_route": "right"}, "train_overrides": ["processor.no_side_route=null"]}) is None


# -- episode files ------------------------------------------------------------------------------
def test_episode_files_store_korean_whole_and_refuse_what_does_not_fit(tmp_path):
    from mobile_vla.data.episode import INSTRUCTION_BYTES, Episode, read_episode, write_episode
    from mobile_vla.errors import EpisodeError

    def episode(text):
        return Episode(images=np.zeros((2, 8, 8, 3), np.uint8), actions=np.zeros((2, 3), np.float32), instruction=text)

    fits = "가" * (INSTRUCTION_BYTES // 3)  # 85 characters, 255 bytes
    path = write_episode(tmp_path / "episode_20300101_000000_1box_hori_left_core_medium.h5", episode(fits))
    assert read_episode(path).instruction == fits
    korean = robot_korean_instruction("right")
    path = write_episode(tmp_path / "episode_20300101_000001_1box_hori_left_core_medium.h5", episode(korean))
    ep = read_episode(path)
    assert ep.instruction == korean and ep.side == "right"  # the text wins over the name's "left"
    with pytest.raises(EpisodeError, match=r"language_instruction.*258 UTF-8 bytes"):
        write_episode(tmp_path / "too_long.h5", episode(fits + "가"))
    assert not list(tmp_path.glob("too_long*"))


# -- simulator: no side, the basket task ----------------------------------------------------------
@pytest.fixture(scope="module")
def world():
    from mobile_vla.sim.world import World

    with World() as w:
        yield w


def test_no_side_instruction_reaches_the_cup_by_the_nearer_side(world):
    import math

    from mobile_vla.sim.expert import nearer_side
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed, sample_scene
    from mobile_vla.sim.tasks import resolve

    for i in range(4):
        scene = sample_scene(eval_scene_seed(0, i))
        result = run_episode(world, scene, "Reach the cup", render=False)
        assert result.success and result.side is None
        nearer = "left" if scene.start_pose[1] >= scene.obstacle_center[1] else "right"
        assert result.passed_side == nearer  # the classic scenes start almost straight (±3°)
    # The side is the one the view shows room on: a cluster 0.2 m left of the robot's line but
    # right of a heading turned 15° left is passed on the left.
    scene = resolve("cup", "varied")[3].sample(eval_scene_seed(0, 0))
    cx, cy = scene.obstacle_center
    turned = np.array([cx - 2.0, cy - 0.2, math.radians(15.0)])
    assert nearer_side(scene, turned) == "left"
    assert nearer_side(scene, turned * [1, 1, 0]) == "right"
    mirrored = turned * [1, 1, -1] + [0, 2 * (cy - turned[1]), 0]  # reflected in the line y = cy
    assert nearer_side(scene, mirrored) == "right"


def test_basket_task_reaches_the_named_basket_and_judges_the_other_as_wrong(world):
    from mobile_vla.sim.basket import BasketJudge, BasketScene
    from mobile_vla.sim.expert import ExpertConfig
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.tasks import TASKS, resolve

    _, spec, _, preset = resolve("basket")
    scene = preset.sample(eval_scene_seed(0, 0))
    assert isinstance(scene, BasketScene) and scene.cup_rgba[3] == 0.0  # the cup is hidden
    assert scene == preset.sample(eval_scene_seed(0, 0))
    (lx, ly), (rx, ry) = scene.baskets
    assert ly > scene.obstacle_center[1] > ry
    for side in SIDES:
        result = run_episode(world, scene, f"Navigate to the gray basket on the {side}", render=False, task=spec)
        assert result.success and result.passed_side == side and not result.wrong_target
    # Driving the left basket's route under a right-basket instruction ends at the wrong basket.
    world.reset(scene)
    judge = BasketJudge(world, side="right")
    outcome = None
    while outcome is None or not outcome.done:
        outcome = judge.step(spec.expert(scene, world.pose, "left", ExpertConfig()))
    assert outcome.wrong_target and not outcome.success and judge.passed_side == "left"
    assert TASKS.get("cup").target == "cup" and resolve()[0] == "cup"  # the cup stays the default


def test_mixed_scenes_show_every_tasks_objects_and_count_confusion(world):
    from mobile_vla.sim.basket import other_task_reached
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.tasks import resolve

    _, cup, _, mixed = resolve("cup", "mixed")
    scene = mixed.sample(eval_scene_seed(0, 1))
    assert scene.show_cup and len(scene.props) == 2
    world.reset(scene)
    frame = world.render()
    world.reset(resolve("cup")[3].sample(eval_scene_seed(0, 1)))
    assert (frame != world.render()).any(1).any(1).sum() > 0  # the baskets are in view
    result = run_episode(world, scene, "Go around the box on the left and reach the cup", render=False, task=cup)
    assert result.success and other_task_reached(scene, result.poses, "cup") is False
    lx, ly = scene.baskets[0]
    assert other_task_reached(scene, np.array([[lx, ly, 0.0]]), "cup") is True
    assert other_task_reached(scene, np.array([[lx, ly, 0.0]]), "basket") is False


def test_gym_env_basket_task():
    import gymnasium as gym

    import mobile_vla.sim.env  # noqa: F401  (registers the env)

    env = gym.make("MobileVLA-Navigate-v0", task="basket")
    obs, info = env.reset(seed=0, options={"instruction": "왼쪽 회색 바구니로 가세요"})
    assert info["side"] == "left" and info["task"] == "basket" and info["scenes"] == "baskets"
    obs, reward, terminated, truncated, info = env.step(np.zeros(3, np.float32))
    assert obs.shape[-1] == 3 and not terminated
    env.close()


def test_collect_no_side_episodes_have_no_counterfactual_and_no_side(tmp_path):
    from mobile_vla.data.formats import list_episodes, read_episode
    from mobile_vla.sim.collect import CollectConfig, collect

    collect(CollectConfig(out=tmp_path, episodes=2, seed=1, no_side_fraction=1.0, noise_fraction=0.0),
            progress=False)
    for path in list_episodes(tmp_path):
        ep = read_episode(path, load_images=False)
        assert ep.side is None and ep.counterfactual_actions is None and ep.attrs["success"]
        assert np.abs(ep.actions[:, 1]).max() > 0.3  # the expert still steers around the obstacle
        assert "no_side_route" not in ep.attrs  # the view rule: files as before, mirrorable


def test_no_side_route_by_convention_passes_on_its_side_and_is_never_mirrored(tmp_path):
    from mobile_vla.data.dataset import read_records
    from mobile_vla.data.formats import list_episodes, read_episode
    from mobile_vla.sim.collect import CollectConfig, collect
    from mobile_vla.sim.expert import ExpertConfig

    for route in ("left", "right"):
        out = tmp_path / route
        collect(CollectConfig(out=out, episodes=4, seed=2, no_side_fraction=1.0, noise_fraction=0.0, scenes="varied",
                              expert=ExpertConfig(no_side_route=route)), progress=False)
        paths = list_episodes(out)
        for path in paths:
            ep = read_episode(path, load_images=False)
            assert ep.side is None and ep.attrs["success"] and ep.attrs["passed_side"] == route
            assert ep.attrs["no_side_route"] == route
        assert not any(r.mirrorable for r in read_records(paths))
    sided = tmp_path / "sided"
    collect(CollectConfig(out=sided, episodes=2, seed=2, noise_fraction=0.0, expert=ExpertConfig(no_side_route="left")),
            progress=False)
    assert all(r.mirrorable and r.side for r in read_records(list_episodes(sided)))  # a named side mirrors
    with pytest.raises(ValueError, match="no_side_route must be one of"):
        ExpertConfig(no_side_route="nearest")


def test_collect_basket_episodes_record_the_named_basket(tmp_path):
    from mobile_vla.data.formats import list_episodes, read_episode
    from mobile_vla.sim.collect import CollectConfig, collect

    collect(CollectConfig(out=tmp_path, episodes=2, seed=1, task="basket", noise_fraction=0.0), progress=False)
    eps = [read_episode(p, load_images=False) for p in list_episodes(tmp_path)]
    assert sorted(ep.side for ep in eps) == ["left", "right"]
    for ep in eps:
        assert ep.attrs["task"] == "basket" and ep.attrs["success"] and ep.attrs["passed_side"] == ep.side
        target_y = float(np.asarray(ep.attrs["target_xy"])[1])
        assert (target_y > 1.0) == (ep.side == "left")  # the named basket, not the hidden cup


def test_no_side_probe_compares_the_policys_first_command_with_the_route(tmp_path):
    import importlib.util
    from pathlib import Path

    from mobile_vla.train.checkpoint import init_checkpoint
    from mobile_vla.train.config import train_config_from_dict

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "no_side_probe.py"
    spec = importlib.util.spec_from_file_location("no_side_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    cfg = train_config_from_dict({"model": {"backbone": {"image_size": 56, "latent_query_num": 2},
                                            "head": {"window_size": 1, "fwd_pred_next_n": 3}}})
    checkpoint = init_checkpoint(tmp_path / "checkpoint", cfg)
    out = probe.probe(str(checkpoint), scenes=2, seed=0, steps=2, route="right", sentence=None)
    assert side_of(out["instructions"]["no side"]) is None and side_of(out["instructions"]["left"]) == "left"
    assert out["mean_abs_lateral"]["expert"] > 0.1  # the expert steers towards the route at once
    assert set(out["mean_abs_lateral"]) == {"no side", "left", "right", "expert"}
    assert 0.0 <= out["no_side_sign_agrees_with_route"] <= 1.0
