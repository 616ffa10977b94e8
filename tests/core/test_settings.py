"""Settings in groups: sources in order, TOML tables and nested variables, the 0.1 flat names as
deprecated aliases, every outside variable through Settings, secrets never shown, and a run's
fingerprint unchanged from 0.1 (so runs started before the groups still resume)."""

import logging

import pytest

from cinerl.core.errors import UserError
from cinerl.core.settings import DEFAULT_WEIGHTS, Settings, env_names, load_settings, settings_table
from cinerl.core.store import fingerprint
from cinerl.generation.registry import all_frame_neutral


def test_sources_in_order_default_file_env_flag(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[run]\nattempts = 3\nmax_attempts = 5\nfps = 12\n"
        "[rewards.weights]\nvisual_quality = 0.5\n[wan]\nsteps = 7\n"
    )
    s, src = load_settings(cfg, {"run.fps": 8}, env={"CINERL_RUN__MAX_ATTEMPTS": "6"})
    assert (s.run.attempts, s.run.max_attempts, s.run.fps, s.run.seed) == (3, 6, 8, 0)
    assert s.rewards.weights["visual_quality"] == 0.5 and s.wan.steps == 7
    assert s.rewards.weights["text_alignment"] == DEFAULT_WEIGHTS["text_alignment"]
    assert src["run.attempts"] == f"file {cfg}" and src["wan.steps"] == f"file {cfg}"
    assert src["run.max_attempts"] == "env CINERL_RUN__MAX_ATTEMPTS"
    assert src["run.fps"] == "flag" and src["run.seed"] == "default"
    assert src["rewards.weights.visual_quality"] == f"file {cfg}"


def test_flat_names_of_0_1_still_work_and_say_they_are_deprecated(tmp_path, caplog):
    cfg = tmp_path / "c.toml"
    cfg.write_text("attempts = 3\nwan_steps = 9\nweight_visual = 0.4\nllm = 'offline'\n")
    with caplog.at_level(logging.WARNING, logger="cinerl.core.settings"):
        s, src = load_settings(
            cfg,
            {"fps": 8, "policy_mode": "frozen"},
            env={"CINERL_MAX_ATTEMPTS": "6", "CINERL_WEIGHT_TEXT": "0.2"},
        )
    assert (s.run.attempts, s.wan.steps, s.run.fps, s.run.max_attempts) == (3, 9, 8, 6)
    assert s.rewards.weights["visual_quality"] == 0.4 and s.rewards.weights["text_alignment"] == 0.2
    assert s.policy.mode == "frozen" and s.llm.provider == "offline"
    assert src["run.max_attempts"] == "env CINERL_MAX_ATTEMPTS"
    text = caplog.text
    assert "'wan_steps' is deprecated, write [wan] steps" in text
    assert "CINERL_MAX_ATTEMPTS is deprecated: use CINERL_RUN__MAX_ATTEMPTS" in text
    with pytest.warns(DeprecationWarning, match="'wan_steps' is deprecated: use 'wan.steps'"):
        assert Settings.of(wan_steps=4).wan.steps == 4


def test_a_new_reward_group_is_weighted_by_adding_a_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rewards.weights]\nsound_sync = 0.3\n")
    s, src = load_settings(cfg, env={"CINERL_REWARDS__WEIGHTS__TEXT_ALIGNMENT": "0"})
    assert s.rewards.weights["sound_sync"] == 0.3 and s.rewards.weights["text_alignment"] == 0.0
    assert src["rewards.weights.text_alignment"] == "env CINERL_REWARDS__WEIGHTS__TEXT_ALIGNMENT"
    with pytest.raises(UserError, match="must not be negative"):
        load_settings(None, {"rewards.weights.visual_quality": -1}, env={})


def test_bad_config_values_give_clear_messages(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("atempts = 3\n")
    with pytest.raises(UserError, match="unknown keys: atempts"):
        load_settings(cfg, env={})
    cfg.write_text("[wan]\nstepz = 3\n")
    with pytest.raises(UserError, match="unknown keys: wan.stepz"):
        load_settings(cfg, env={})
    cfg.write_text("attempts = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(UserError, match="min_scenes"):
        load_settings(None, {"plan.min_scenes": 5, "plan.max_scenes": 2}, env={})
    with pytest.raises(UserError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(UserError, match="run.fps"):
        load_settings(None, env={"CINERL_RUN__FPS": "fast"})
    with pytest.raises(UserError, match="unknown setting 'wan.nope'"):
        load_settings(None, {"wan.nope": 1}, env={})


def test_outside_variables_are_settings_and_secrets_are_never_shown():
    env = {
        "OPENAI_API_KEY": "sk-very-secret",
        "WAN_MODEL_ROOT": "/models/wan",
        "WAN_T5_PATH": "/models/t5",
        "CINERL_EMBEDDER_PATH": "/models/minilm",
        "CINERL_REWARD_THREADS": "3",
    }
    s, src = load_settings(None, env=env)
    assert s.llm.api_key == "sk-very-secret" and src["llm.api_key"] == "env OPENAI_API_KEY"
    assert s.wan.model_dir == "/models/wan" and s.wan.component_paths() == {"text_encoder": "/models/t5"}
    assert s.policy.embedder_path == "/models/minilm" and s.rewards.threads == 3
    rows = {r["setting"]: r for r in settings_table(s, src)}
    assert "sk-very-secret" not in str(rows) and rows["llm.api_key"]["value"].startswith("***")
    assert rows["wan.model_dir"]["env"] == ["WAN_MODEL_ROOT", "CINERL_WAN__MODEL_DIR"]
    assert rows["wan.model_dir"]["env_deprecated"] == ["CINERL_WAN_MODEL_DIR"]
    assert "api_key" not in s.public_dump()["llm"]
    # every setting is listed, with its group, source and the variables that set it
    assert set(rows) >= {"run.seed", "wan.steps", "rewards.weights.text_alignment", "llm.api_key"}
    assert env_names("run.attempts") == ["CINERL_ATTEMPTS", "CINERL_RUN__ATTEMPTS"]


def test_fingerprint_is_the_one_cineRL_0_1_computed():
    """Recorded with the tree before the groups (cinerl.memory.fingerprint over the flat dump
    minus NOT_FILM_SETTINGS): a run started then still resumes now, with 0.1's defaults given
    (the policy's default algorithm is GRPO since issue 20; 0.1's was PPO: such a run resumes with
    `--rl ppo`, and without it the resume names `policy.rl: ppo -> grpo`)."""
    neutral = all_frame_neutral()
    v01 = Settings.of(policy__rl="ppo")
    assert fingerprint("a dog", v01.film_fingerprint_view(neutral)) == "d76b2465b68de541"
    assert fingerprint("a dog", Settings().film_fingerprint_view(neutral)) != "d76b2465b68de541"
    s = Settings.of(
        policy__rl="ppo",
        run__attempts=3,
        run__max_attempts=5,
        wan__steps=7,
        run__shot_mode="keyframes",
        assembly__transition="crossfade",
        **{"rewards.weights.text_alignment": 0.3},
    )
    assert fingerprint("a dog", s.film_fingerprint_view(neutral)) == "ef613a4e568e3087"
    # speed settings do not make another run; a frame-changing new setting does
    fast = Settings.of(wan__attention="flash3", wan__compile_mode="max-autotune", llm__api_key="k")
    assert fast.film_fingerprint_view(neutral) == Settings().film_fingerprint_view(neutral)
    other = Settings.of(wan__scalar_timestep=False)
    assert other.film_fingerprint_view(neutral) != Settings().film_fingerprint_view(neutral)
