import math

import numpy as np
import pytest
import torch

from cinerl.core.vocabulary import ACTION_FACTORS
from cinerl.training.policy.state import STATE_DIM, state_vector
from cinerl.training.policy.net import PromptPolicy, Transition
from cinerl.planning.offline import plan_story

STATE = np.linspace(-1, 1, STATE_DIM).astype(np.float32)


def prob_of(policy, factor, value):
    with torch.no_grad():
        logits, _ = policy.net(torch.as_tensor(STATE)[None])
    return float(torch.softmax(logits[factor][0], -1)[ACTION_FACTORS[factor].index(value)])


def test_uniform_start_acts_deterministically_per_seed():
    p = PromptPolicy(seed=0, prior_strength=0.0)
    a1, lp1 = p.act(STATE, seed=7)
    a2, lp2 = p.act(STATE, seed=7)
    assert a1 == a2 and lp1 == lp2
    expected = -sum(math.log(len(v)) for v in ACTION_FACTORS.values())
    assert lp1 == pytest.approx(expected, abs=1e-5)
    assert len({tuple(p.act(STATE, seed=s)[0].values()) for s in range(20)}) > 10


@pytest.mark.parametrize("algorithm", ["ppo", "grpo"])
def test_updates_move_probability_towards_rewarded_choice(algorithm):
    p = PromptPolicy(algorithm=algorithm, seed=0, lr=1e-2, prior_strength=0.0)
    before = prob_of(p, "identity_lock", "full")
    for step in range(30):
        batch = []
        for k in range(4):
            action, _ = p.act(STATE, seed=step * 10 + k)
            reward = 0.9 if action["identity_lock"] == "full" else 0.3
            batch.append(Transition(STATE, action, reward))
        p.update(batch)
    assert prob_of(p, "identity_lock", "full") > before + 0.3
    assert p.version == 30


def test_grpo_learns_nothing_from_equal_rewards_and_random_never_learns():
    g = PromptPolicy(algorithm="grpo", seed=0, entropy_coef=0.0)
    before = [t.clone() for t in g.net.heads.parameters()]
    batch = [Transition(STATE, g.act(STATE, s)[0], 0.5) for s in range(4)]
    g.update(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, g.net.heads.parameters()))
    r = PromptPolicy(mode="random")
    assert r.update(batch) == {} and r.version == 0


def test_save_load_round_trip_and_mismatch(tmp_path):
    p = PromptPolicy(seed=0)
    batch = [Transition(STATE, p.act(STATE, s)[0], s / 4) for s in range(4)]
    p.update(batch)
    path = p.save(tmp_path / "policy.pt")
    q = PromptPolicy(seed=99)
    assert q.load(path) and q.version == 1
    assert q.act(STATE, 5) == p.act(STATE, 5)
    assert not PromptPolicy().load(tmp_path / "missing.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a policy")
    assert not PromptPolicy().load(tmp_path / "broken.pt")
    assert list(tmp_path.glob(".*tmp*")) == []


def test_state_vector_uses_minilm_and_story_position():
    bible = plan_story("A knight guards the castle and a thief climbs the tower.", seed=0, scenes=3)
    s0 = state_vector(bible.scenes[0], bible, [])
    s2 = state_vector(bible.scenes[2], bible, [0.2, 0.4, 0.6, 0.8])
    assert s0.shape == (STATE_DIM,) and s0.dtype == np.float32
    assert np.linalg.norm(s0[:384]) == pytest.approx(1.0, abs=1e-4)  # normalised MiniLM embedding
    assert s0[384] == 0.0 and s2[384] == 1.0  # position in the story
    assert list(s2[-4:-1]) == pytest.approx([0.4, 0.6, 0.8])  # the three most recent rewards


@pytest.mark.parametrize("variable", ["CINERL_POLICY__EMBEDDER_PATH", "CINERL_EMBEDDER_PATH"])
def test_embedder_folder_comes_from_the_setting(tmp_path, monkeypatch, variable):
    """The variable the 'unavailable' message names is the one that is read (and the 0.1 name)."""
    from cinerl.core.errors import ModelUnavailable
    from cinerl.models.embedder import default_embedder_path, load_embedder

    shipped = default_embedder_path()
    monkeypatch.setenv(variable, str(tmp_path))
    assert default_embedder_path() == tmp_path
    with pytest.raises(ModelUnavailable, match=f"CINERL_POLICY__EMBEDDER_PATH.*looked in {tmp_path}"):
        load_embedder.__wrapped__(None)
    monkeypatch.setenv(variable, str(shipped))
    vec = load_embedder.__wrapped__(None).encode(["a lighthouse at dusk"])
    assert vec.shape == (1, 384)
