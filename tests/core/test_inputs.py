import os

import pytest

from cinerl.core.inputs import UserError, check_out_dir, check_prompt, check_scene_count, slug


def test_prompt_checks():
    assert check_prompt("  a film  ") == "a film"
    assert check_prompt("line one\nline two") == "line one\nline two"
    for bad, msg in [
        ("", "empty"),
        (" \t", "empty"),
        ("x" * 20001, "limit"),
        ("a\x1bb", "control"),
        (b"\xff\xfe", "UTF-8"),
        ("a\udcffb", "UTF-8"),
    ]:
        with pytest.raises(UserError, match=msg):
            check_prompt(bad)


def test_scene_count_bounds():
    assert check_scene_count(None) is None and check_scene_count(4) == 4
    for bad in (0, -1, 25, 1000):
        with pytest.raises(UserError, match="--scenes"):
            check_scene_count(bad)


def test_unwritable_out_even_for_root():
    # /proc refuses new folders to every user, root included
    with pytest.raises(UserError, match="not writable"):
        check_out_dir("/proc/cinerl-run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(UserError, match="not writable"):
        check_out_dir(ro / "run")
    assert not (ro / "run").exists()


def test_out_inside_a_file_leaves_nothing(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(UserError):
        check_out_dir(f / "run")
    with pytest.raises(UserError, match="is a file"):
        check_out_dir(f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_writable_out_is_created_and_probe_removed(tmp_path):
    out = check_out_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []


def test_slug_is_never_a_path():
    assert slug("../../etc/passwd") == "etc_passwd"
    assert slug("Élodie Durand") == "elodie_durand"
    assert slug("///", "fallback") == "fallback"
