import pytest

from cinerl.core.settings import load_settings
from cinerl.core.errors import UserError


def test_sources_in_order_default_file_env_flag(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("attempts = 3\nmax_attempts = 5\nfps = 12\nweight_visual = 0.5\n")
    s, src = load_settings(cfg, {"fps": 8}, env={"CINERL_MAX_ATTEMPTS": "6"})
    assert (s.attempts, s.max_attempts, s.fps, s.weight_visual, s.seed) == (3, 6, 8, 0.5, 0)
    assert src["attempts"].startswith("file") and src["max_attempts"] == "env CINERL_MAX_ATTEMPTS"
    assert src["fps"] == "flag" and src["seed"] == "default"
    assert s.reward_weights()["visual_quality"] == 0.5


def test_bad_config_values_give_clear_messages(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("atempts = 3\n")
    with pytest.raises(UserError, match="unknown keys: atempts"):
        load_settings(cfg, env={})
    cfg.write_text("attempts = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_settings(cfg, env={})
    with pytest.raises(UserError, match="min_scenes"):
        load_settings(None, {"min_scenes": 5, "max_scenes": 2}, env={})
    with pytest.raises(UserError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(UserError, match="fps"):
        load_settings(None, env={"CINERL_FPS": "fast"})
