"""CineRL's reward callables for the enhancer, without a model: a prompt that keeps the brief's
facts renders a clip that scores higher than one that drops them, a failed render is None, and
the format reward keeps the audit's word range and refuses invented cast."""

from __future__ import annotations

import pytest

from cinerl.planning.prompt_audit import WORDS, word_count
from cinerl.training.enhancer.reward import CineRLRewards, format_score, invented_cast, text_of, word_score

SEED = "A knight rides through a misty forest to find a lost dragon"


@pytest.fixture(scope="module")
def rewards():
    return CineRLRewards(width=96, height=64, fps=4, seconds=1.5, mode="i2v", brief_level="brief", workers=2)


def _faithful(ep) -> str:
    """The offline composer's image-to-video prompt of the episode's scene (every lock kept)."""
    from cinerl.planning.agents import offline_prompt

    return offline_prompt(ep.scene, ep.bible, "i2v").text("i2v")


def test_clip_reward_prefers_the_prompt_that_keeps_the_story(rewards):
    ep = rewards.episode(SEED)
    faithful = _faithful(ep)
    generic = "A bright sunny beach with people playing volleyball, fast handheld camera, neon pink sky."
    completions = [[{"role": "assistant", "content": faithful}], [{"role": "assistant", "content": generic}]]
    metrics: dict[str, float] = {}
    got = rewards.clip(
        prompts=[None, None],
        completions=completions,
        seed_prompt=[SEED, SEED],
        log_metric=metrics.__setitem__,
    )
    assert rewards.calls[-1] == 2 and all(isinstance(v, float) for v in got)
    assert got[0] > got[1] + 0.05, got
    assert metrics["component/location_palette"] >= 0 and "group/location_consistency" in metrics
    assert metrics["time/render_s"] > 0 and metrics["clip/failed"] == 0


def test_a_failed_render_scores_none_not_zero(rewards, monkeypatch):
    ep = rewards.episode(SEED)
    real = rewards.backend.generate

    def flaky(request):
        if "BREAK" in request.prompt:
            raise RuntimeError("the renderer broke")
        return real(request)

    monkeypatch.setattr(rewards.backend, "generate", flaky)
    got = rewards.clip(
        prompts=[None] * 3, completions=[_faithful(ep), "BREAK " + _faithful(ep), ""], seed_prompt=[SEED] * 3
    )
    assert got[0] is not None and got[0] > 0 and got[1] is None and got[2] is None


def test_format_reward_word_range_and_invented_cast(rewards):
    ep = rewards.episode(SEED)
    lo, hi = WORDS["i2v"]
    assert word_score(lo, lo, hi) == 1.0 and word_score(hi, lo, hi) == 1.0
    assert word_score(lo // 2, lo, hi) == pytest.approx(0.5) and word_score(2 * hi, lo, hi) == 0.0
    faithful = _faithful(ep)
    assert format_score(faithful, ep) == 1.0
    assert format_score("A knight rides.", ep) == pytest.approx(3 / lo)
    for extra in (" Gandalf, a wizard in a grey robe, walks beside them.", " They meet Bob at the gate."):
        invented = faithful + extra
        assert invented_cast(invented, ep) == [extra.split()[0].strip(",") if "Gandalf" in extra else "Bob"]
        assert format_score(invented, ep) == pytest.approx(0.5 * word_score(word_count(invented), lo, hi))
    assert invented_cast(faithful, ep) == []  # "Dawn, soft even daylight." is the brief's own word
    assert text_of([{"role": "assistant", "content": " x "}]) == "x"
    assert rewards.fmt(prompts=[None], completions=[faithful], seed_prompt=[SEED]) == [1.0]
