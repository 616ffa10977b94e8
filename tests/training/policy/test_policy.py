import math

import numpy as np
import pytest
import torch

from cinerl.core.vocabulary import ACTION_FACTORS
from cinerl.training.policy.state import (
    CAST_SIZES,
    CONTEXT_DIM,
    ENERGIES,
    FACT_BLOCKS,
    LIGHTS,
    STATE_DIM,
    context_features,
    state_vector,
)
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
    recent = s2[-4 - CONTEXT_DIM : -1 - CONTEXT_DIM]
    assert list(recent) == pytest.approx([0.4, 0.6, 0.8])  # the three most recent rewards
    # the plan's facts close the state: one light, one energy band, one cast size
    ctx = s0[-CONTEXT_DIM:]
    assert ctx.sum() in (3.0, 4.0) and set(np.unique(ctx)) <= {0.0, 1.0}


def _scene_bible(time_of_day: str, scenery: str, action: str, cast: int, description: str = ""):
    from tests.rewards.scene_plan_clips import CAST, nc
    from cinerl.core.schema import Location, Scene, StoryBible

    loc = Location(
        id="l", name="the Place", scenery_type=scenery, palette=[nc("sand")], visual_description=description
    )
    chars = CAST[:cast]
    scene = Scene(
        index=0,
        title="t",
        beat="beginning",
        duration_s=4,
        character_ids=[c.id for c in chars],
        location_id="l",
        action=action,
        time_of_day=time_of_day,
    )
    b = StoryBible(seed_prompt="t", title="t", logline="t", characters=chars, locations=[loc], scenes=[scene])
    return scene, b


@pytest.mark.parametrize(
    "time_of_day, scenery, action, cast, description, light, energy, interior",
    [
        ("night", "city", "Ana chases Ben through the streets", 2, "", "neon", "vigorous", 0.0),
        ("night", "interior", "Ana keeps a quiet vigil", 1, "candles on the altar", "flame", "calm", 1.0),
        ("dusk", "meadow", "Ana walks home", 4, "", "golden", "moderate", 0.0),
        ("day", "meadow", "The afternoon at the field", 3, "", "day", None, 0.0),
    ],
)
def test_context_features_read_the_plan(
    time_of_day, scenery, action, cast, description, light, energy, interior
):
    scene, b = _scene_bible(time_of_day, scenery, action, cast, description)
    c = context_features(scene, b)
    nl, ne = len(LIGHTS), len(ENERGIES)
    assert c.shape == (CONTEXT_DIM,)
    assert LIGHTS[int(c[:nl].argmax())] == light and c[:nl].sum() == 1
    assert ENERGIES[int(c[nl : nl + ne].argmax())] == energy and c[nl : nl + ne].sum() == 1
    assert c[nl + ne] == interior
    assert CAST_SIZES[int(c[nl + ne + 1 :].argmax())] == min(cast, 4)


def _context_state(index: int) -> np.ndarray:
    s = np.zeros(STATE_DIM, np.float32)
    s[-CONTEXT_DIM + index] = 1.0
    return s


def test_context_heads_start_at_the_prior_and_learn_per_context():
    """A night scene that pays for low key light and a day scene that pays for daylight: the
    fresh policy is the recipe in both; after updates on the night scene only, the night scene's
    greedy light is low key and the day scene's is still daylight (zero-initialised context
    weights, context_lr), without collapsing the rest (approx_kl stays small)."""
    night, day = _context_state(LIGHTS.index("night")), _context_state(LIGHTS.index("day"))
    p = PromptPolicy(algorithm="grpo", seed=0)
    assert p.greedy(night) == p.greedy(day) == p.recipe
    infos = []
    for n in range(40):  # at the prior a take samples low key 1 time in 18
        batch = []
        for k in range(3):
            a, _ = p.act(night, 100 * n + k, greedy=k == 0)
            batch.append(Transition(night, a, 0.9 if a["lighting"] == "low key" else 0.5))
        if len({t.reward for t in batch}) > 1:
            infos.append(p.update(batch))
    assert infos, "no take sampled low key in 40 scenes"
    assert p.greedy(night)["lighting"] == "low key"
    assert p.greedy(day)["lighting"] == "soft daylight"
    assert max(i["approx_kl"] for i in infos) < 1.0


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


def test_one_factor_exploration_changes_one_factor_of_the_greedy_action():
    p = PromptPolicy(seed=0, explore="one_factor")
    greedy = p.act(STATE, 0, greedy=True)[0]
    changed = [sum(a != greedy[f] for f, a in p.act(STATE, seed)[0].items()) for seed in range(20)]
    assert changed == [1] * 20
    # every factor gets explored, not always the same one
    assert {f for s in range(40) for f, a in p.act(STATE, s)[0].items() if a != greedy[f]} == set(greedy)
    # a frozen policy's exploring takes explore the same way (the film keeps the best take)
    frozen = PromptPolicy(seed=0, explore="one_factor", mode="frozen")
    assert [frozen.act(STATE, s)[0] for s in range(20)] == [p.act(STATE, s)[0] for s in range(20)]
    joint = PromptPolicy(seed=0, explore="joint", prior_strength=0.0)
    assert max(sum(a != greedy[f] for f, a in joint.act(STATE, s)[0].items()) for s in range(20)) > 2
    template = PromptPolicy(seed=0, explore="one_factor", mode="template")
    assert all(template.act(STATE, s)[0] == template.recipe for s in range(5))
    with pytest.raises(ValueError, match="unknown exploration"):
        PromptPolicy(explore="sideways")


def _learn(p: PromptPolicy, state: np.ndarray, factor: str, value: str, updates: int) -> PromptPolicy:
    """`updates` scenes of three takes (the first greedy) on `state`, paying 0.9 for `value`."""
    for n in range(updates):
        batch = []
        for k in range(3):
            a, _ = p.act(state, 100 * n + k, greedy=k == 0)
            batch.append(Transition(state, a, 0.9 if a[factor] == value else 0.5))
        p.update(batch)
    return p


def test_head_biases_learn_what_pays_in_every_scene_at_bias_lr():
    """A reward that pays for wide shots, learned on night scenes only: with the heads' biases at
    bias_lr a day scene (whose context weights never move) shoots wide too, and the wide logit's
    bias moved by far more than the trunk's rate (bias_lr None) allows in those steps."""
    night, day = _context_state(LIGHTS.index("night")), _context_state(LIGHTS.index("day"))
    UPDATES = 10  # noqa: N806

    def learn(bias_lr):
        p = PromptPolicy(algorithm="grpo", seed=0, explore="joint", prior_strength=0.0, bias_lr=bias_lr)
        return _learn(p, night, "shot_size", "wide", UPDATES)

    fast, slow = learn(0.05), learn(None)
    assert fast.greedy(night)["shot_size"] == "wide" and fast.greedy(day)["shot_size"] == "wide"
    wide = ACTION_FACTORS["shot_size"].index("wide")
    moved = [p.net.heads["shot_size"].bias[wide].item() for p in (fast, slow)]
    assert moved[0] > 0.2 and abs(moved[1]) < UPDATES * 4 * 1e-3 + 1e-6  # Adam: <= lr a step
    assert [g["lr"] for g in fast.optim.param_groups] == [1e-3, 0.1, 0.05]


def test_a_policy_saved_with_the_old_optimiser_layout_keeps_its_weights(tmp_path):
    """Files saved before bias_lr had two Adam groups: the weights load, the moments restart."""
    old = PromptPolicy(seed=3)
    with torch.no_grad():
        old.net.heads["lighting"].bias.add_(1.0)
    two_groups = torch.optim.Adam(
        [{"params": list(old.net.trunk.parameters()), "lr": 1e-3}, {"params": old.net.context_parameters()}],
        lr=0.1,
    )
    data = {**old.state_dict(), "optim": two_groups.state_dict()}
    path = tmp_path / "two_groups.pt"
    torch.save(data, path)
    fresh = PromptPolicy(seed=4)
    assert fresh.load(path) is True
    assert torch.equal(fresh.net.heads["lighting"].bias, old.net.heads["lighting"].bias)
    assert not list(tmp_path.glob("*.unreadable-*"))


def test_a_policy_saved_with_the_other_facts_per_factor_loads_in_either_direction(tmp_path):
    """facts_per_factor moves the biases of the factors that read plan facts into the trunk's Adam
    group: a file saved either way is the same network, so it loads with its weights (a policy of
    0.1's defaults and one of today's share a file), only Adam's moments restart."""
    for saved_with in (True, False):
        old = PromptPolicy(seed=3, facts_per_factor=saved_with)
        with torch.no_grad():
            old.net.heads["motion"].bias.add_(1.0)
        path = old.save(tmp_path / f"saved_{saved_with}.pt")
        other = PromptPolicy(seed=4, facts_per_factor=not saved_with)
        assert other.load(path) is True
        assert torch.equal(other.net.heads["motion"].bias, old.net.heads["motion"].bias)
        same = PromptPolicy(seed=4, facts_per_factor=saved_with)
        assert same.load(path) is True and same.optim.state_dict() == old.optim.state_dict()
    assert not list(tmp_path.glob("*.unreadable-*"))


def test_facts_per_factor_keeps_a_golden_scenes_lesson_in_golden_scenes():
    """A golden-hour scene and a day scene with the same cast size and energy band: the reward pays
    the golden scene for golden hour light. With facts_per_factor the lesson stays mostly in the
    golden scene (the lighting head's context reads the expected light and interior only, and its
    bias learns at the trunk's rate); reading every fact at context_lr, the shared cast and energy
    facts carry it into the day scene."""
    cast = FACT_BLOCKS["cast"][CAST_SIZES.index(2)]
    energy = FACT_BLOCKS["energy"][ENERGIES.index("moderate")]
    golden, day = _context_state(LIGHTS.index("golden")), _context_state(LIGHTS.index("day"))
    for s in (golden, day):
        s[-CONTEXT_DIM + cast] = s[-CONTEXT_DIM + energy] = 1.0
    gh = ACTION_FACTORS["lighting"].index("golden hour")

    def lesson(per_factor: bool) -> tuple[float, float]:
        """golden hour's margin over the best other lighting, in the golden and the day scene."""
        p = PromptPolicy(algorithm="grpo", seed=0, explore="one_factor", facts_per_factor=per_factor)
        _learn(p, golden, "lighting", "golden hour", UPDATES)
        with torch.no_grad():
            logits, _ = p.net(torch.as_tensor(np.stack([golden, day])))
        lg = logits["lighting"]
        others = torch.cat([lg[:, :gh], lg[:, gh + 1 :]], 1).max(1).values
        return tuple((lg[:, gh] - others).tolist())

    UPDATES = 12  # noqa: N806
    (golden_own, day_own), (golden_all, day_all) = lesson(True), lesson(False)
    print(
        f"golden hour's margin (golden / day scene): per factor {golden_own:.2f} / {day_own:.2f},"
        f" all facts {golden_all:.2f} / {day_all:.2f}"
    )
    assert golden_own > 0 and golden_all > 0  # both learned the golden scene
    assert day_own < 0  # daylight still wins the day scene
    assert day_all > day_own + 1.0  # reading every fact moved the day scene too
