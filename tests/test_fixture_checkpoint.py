"""A checkpoint written by release 0.1.0 (before the policy package existed) still loads and acts the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mobile_vla import Policy
from mobile_vla.policy.backends import load_policy

FIXTURE = Path(__file__).parent / "fixtures" / "checkpoint_0_1_0"


def test_old_checkpoint_gives_the_recorded_actions():
    frames = np.load(FIXTURE / "frames.npy")  # (5, 48, 64, 3) uint8
    recorded = json.loads((FIXTURE / "actions.json").read_text())  # instruction -> 5 chunks (4, 2)
    policy = Policy.from_checkpoint(FIXTURE / "checkpoint")
    for instruction, chunks in recorded.items():
        session = policy.new_session(instruction)
        got = np.stack([session.step(f) for f in frames])
        np.testing.assert_allclose(got, np.asarray(chunks, np.float32), rtol=0, atol=1e-6)


def test_load_policy_picks_the_torch_backend():
    policy = load_policy(FIXTURE / "checkpoint")
    assert isinstance(policy, Policy) and policy.window_size == 3 and policy.chunk_size == 4


def test_every_policy_kind_satisfies_the_contract():
    from mobile_vla.policy.contract import BatchedPolicyBackend, PolicyBackend, PolicySession
    from mobile_vla.serve.fake import FakePolicy

    for policy in (Policy.from_checkpoint(FIXTURE / "checkpoint"), FakePolicy()):
        assert isinstance(policy, PolicyBackend) and isinstance(policy, BatchedPolicyBackend)
        assert isinstance(policy.new_session("Go around the box on the left and reach the cup"), PolicySession)


def test_a_deployments_no_side_convention_gives_the_model_that_sides_instruction():
    import pytest

    from mobile_vla.errors import MobileVLAError
    from mobile_vla.vocab.instructions import canonical_instruction

    frames = np.load(FIXTURE / "frames.npy")
    plain, right = load_policy(FIXTURE / "checkpoint"), load_policy(FIXTURE / "checkpoint", no_side_route="right")

    def chunks(policy, instruction):
        session = policy.new_session(instruction)
        return session, np.stack([session.step(f) for f in frames])

    session, asked = chunks(right, "Reach the cup")
    assert session.instruction == "Reach the cup"  # what was asked is kept; the model reads the right side's
    np.testing.assert_allclose(asked, chunks(plain, canonical_instruction("right"))[1], rtol=0, atol=1e-6)
    assert not np.allclose(chunks(plain, "Reach the cup")[1], asked)  # as written, the sentence reads otherwise
    left = "Go around the box on the left and reach the cup"  # a named side is never rewritten
    np.testing.assert_allclose(chunks(right, left)[1], chunks(plain, left)[1], rtol=0, atol=1e-6)
    with pytest.raises(MobileVLAError, match="no_side_route.*'view'"):
        load_policy(FIXTURE / "checkpoint", no_side_route="view")
