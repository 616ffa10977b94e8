"""The soundtrack in a real (tiny) film through `cinerl make`: 96x64 previz, 2 scenes, 1 take.

One film is made with the defaults (narration + generated bed); its run folder is then resumed
with other audio settings, which shoots nothing again and speaks nothing again."""

from __future__ import annotations

import json
import re
import shutil

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from cinerl.apps.cli.app import app
from cinerl.assembly.audio import speech
from cinerl.assembly.audio.loudness import integrated_loudness, true_peak
from cinerl.assembly.audio.writer import decode_audio, read_wav, write_wav

PROMPT = "A fisherman and his daughter search the stormy harbour for a lost boat at night"
runner = CliRunner()


def make(out, *extra):
    args = ["make", PROMPT, "--out", str(out), "--scenes", "2", "--attempts", "1", "--max-attempts", "1"]
    args += ["--size", "96x64", "--policy-mode", "random", "--resume", *extra]
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    out = tmp_path_factory.mktemp("sound") / "film"
    r = make(out)
    assert r.exit_code == 0, r.output
    return out


def report(out) -> dict:
    return json.loads((out / "report.json").read_text())


def envelope(audio: np.ndarray, hop: int = 480) -> np.ndarray:
    """RMS per 10 ms of a mono or stereo track."""
    mono = audio if audio.ndim == 1 else audio.mean(axis=1)
    n = len(mono) // hop
    return np.sqrt((mono[: n * hop].reshape(n, hop) ** 2).mean(axis=1))


def test_film_has_one_aac_stereo_track_as_long_as_the_video(film):
    with av.open(str(film / "film.mp4")) as c:
        video, audio = c.streams.video, c.streams.audio
        assert len(video) == 1 and len(audio) == 1
        a = audio[0]
        assert (a.codec_context.name, a.sample_rate, a.channels) == ("aac", 48_000, 2)
        v_seconds = video[0].frames / float(video[0].average_rate)
        a_seconds = float(a.duration * a.time_base)
    frame = 1 / 24
    assert abs(a_seconds - v_seconds) <= frame
    decoded = decode_audio(film / "film.mp4")
    assert abs(decoded.shape[0] / 48_000 - v_seconds) <= frame  # AAC's priming is under a frame
    rep = report(film)
    assert rep["film"]["seconds"] == pytest.approx(v_seconds)
    for name in ("narration_00.wav", "narration_01.wav", "music.wav", "mix.wav"):
        assert (film / "audio" / name).is_file()
    stems = {a["key"].split(":")[0] for a in _artifacts(film) if a[0] == "audio"}
    assert stems == {"narration_00", "narration_01", "music", "mix"}


def _artifacts(out):
    import sqlite3

    with sqlite3.connect(out / "state.db") as db:
        return [
            dict(zip(("kind", "key"), r)) | {0: r[0]} for r in db.execute("SELECT kind, key FROM artifacts")
        ]


def test_loudness_and_true_peak_of_the_film_track(film):
    track = decode_audio(film / "film.mp4")
    assert integrated_loudness(track) == pytest.approx(-16.0, abs=0.5)
    mix = read_wav(film / "audio" / "mix.wav")
    assert integrated_loudness(mix) == pytest.approx(-16.0, abs=0.5)
    assert true_peak(mix) <= -1.0 + 0.01
    sound = report(film)["sound"]
    assert sound["integrated_lufs"] == pytest.approx(-16.0, abs=0.5) and sound["true_peak_dbtp"] <= -1.0


def test_subtitles_carry_the_narration_with_its_timing(film):
    sound = report(film)["sound"]
    bible = json.loads((film / "story" / "bible.json").read_text())
    lines = sound["narration"]
    assert [ln["text"] for ln in lines] == [sc["narration"] for sc in bible["scenes"]]
    srt = (film / "film.srt").read_text()
    offsets = report(film)["film"]["scene_offsets"]
    for ln, offset in zip(lines, offsets):
        assert ln["text"] in srt
        assert ln["start"] == pytest.approx(offset + 0.4, abs=1e-3)  # the lead-in
        seconds = len(read_wav(film / "audio" / f"narration_{ln['scene']:02d}.wav")) / 48_000
        assert ln["end"] - ln["start"] == pytest.approx(seconds, abs=2e-3)
    from cinerl.assembly.subtitles import srt_timestamp

    assert f"{srt_timestamp(lines[1]['start'])} --> {srt_timestamp(lines[1]['end'])}" in srt


@pytest.fixture(scope="module")
def resumed(film, tmp_path_factory):
    """The film's run resumed with --music none --tts piper (no voice): no take is shot again
    and no line is spoken again (espeak would raise)."""
    out = tmp_path_factory.mktemp("resumed") / "film"
    shutil.copytree(film, out)

    def no_speech(*a, **k):
        raise AssertionError("a committed narration line was spoken again")

    import cinerl.assembly.audio.soundtrack as st

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(speech, "espeak_speak", no_speech)
        mp.setattr(st, "espeak_speak", no_speech)
        r = make(out, "--music", "none", "--tts", "piper")
    assert r.exit_code == 0, r.output
    return out


def test_narration_starts_at_each_scene_offset(resumed):
    """--music none: a narration-only track, silent before each line, speech right at
    offset + lead-in (onset detection on the film's decoded track)."""
    rep = report(resumed)
    track = decode_audio(resumed / "film.mp4")
    env = envelope(track)
    loud = env.max()
    for ln in rep["sound"]["narration"]:
        k = int(round(ln["start"] * 100))  # 10 ms hops
        assert env[max(0, k - 30) : k - 2].max() < loud * 0.01  # quiet before the line
        onset = k - 2 + int(np.argmax(env[k - 2 : k + 60] > loud * 0.1))
        assert abs(onset - k) <= 12, (onset, k)  # speech within 120 ms of its cue
    assert rep["sound"]["music"] == "none"
    assert (resumed / "film.mp4").stat().st_size > 0


def test_piper_without_a_voice_narrates_with_espeak_and_says_so(resumed, film):
    warnings = report(resumed)["sound"]["warnings"]
    assert any("audio.tts_model" in w and "espeak-ng" in w for w in warnings), warnings
    a = read_wav(resumed / "audio" / "narration_00.wav")
    b = read_wav(film / "audio" / "narration_00.wav")
    assert np.array_equal(a, b)
    frames = [
        json.loads((d / "report.json").read_text())["scenes"][0]["attempts"][0]["clip_path"]
        for d in (film, resumed)
    ]
    assert frames[0] == frames[1]


def test_killed_in_the_audio_stage_rerun_gives_the_same_film_bytes(film, tmp_path):
    """A run killed after the narration but before music and mix were committed: the rerun
    makes the film an uninterrupted run makes, byte for byte."""
    out = tmp_path / "film"
    shutil.copytree(film, out)
    import sqlite3

    with sqlite3.connect(out / "state.db") as db:
        db.execute("DELETE FROM artifacts WHERE kind = 'audio' AND key NOT LIKE 'narration%'")
    for name in ("music.wav", "mix.wav", "mix.json"):
        (out / "audio" / name).unlink()
    (out / "film.mp4").write_bytes(b"half a film")
    r = make(out)
    assert r.exit_code == 0, r.output
    assert (out / "film.mp4").read_bytes() == (film / "film.mp4").read_bytes()


def test_music_file_problems_are_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\x00not audio at all" * 50)
    for music, words in ((tmp_path / "missing.ogg", "not found"), (bad, "cannot read music file")):
        out = tmp_path / f"out_{music.stem}"
        r = make(out, "--music", str(music))
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and words in lines[0], r.output
        assert not out.exists()  # checked before anything is written


def test_music_file_loops_to_the_film(tmp_path):
    from cinerl.assembly.audio.music import load_music

    t = np.arange(int(0.5 * 48_000)) / 48_000
    tone = 0.3 * np.sin(2 * np.pi * 330 * t) * np.linspace(1, 0.2, t.size)  # a falling ramp: seams show
    path = write_wav(np.stack([tone, tone], 1), tmp_path / "short.wav")
    bed = load_music(path, 3.0)
    assert bed.shape == (3 * 48_000, 2)
    period = t.size
    env = envelope(bed, hop=2400)  # 50 ms
    per = period // 2400
    assert np.allclose(env[1 : per - 1], env[per + 1 : 2 * per - 1], rtol=0.05)  # the same loop again
    assert env[per * 4 + 1] > 0.5 * env[1]  # still playing after four loops (faded only at the end)


def test_report_lists_the_narration_and_the_loudness(film):
    page = (film / "report.html").read_text()
    i = page.index("<h2>Soundtrack</h2>")
    section = page[i : page.index("</section>", i)]
    for ln in report(film)["sound"]["narration"]:
        assert ln["text"] in section
    assert "LUFS integrated" in section and "dBTP" in section
    # the film, its AAC track in it, plays in the page: embedded, or linked from the run folder
    src = re.search(r'<video[^>]*><source src="([^"]+)"', page).group(1)
    assert src.startswith("data:video/mp4") or (film / src).resolve() == (film / "film.mp4").resolve()


def test_music_file_is_looped_to_the_film_in_a_resumed_run(film, tmp_path):
    t = np.arange(int(0.75 * 48_000)) / 48_000
    tone = 0.3 * np.sin(2 * np.pi * 330 * t)
    song = write_wav(np.stack([tone, tone], 1), tmp_path / "song.wav")
    out = tmp_path / "film"
    shutil.copytree(film, out)
    r = make(out, "--music", str(song))
    assert r.exit_code == 0, r.output
    rep = report(out)
    assert rep["sound"]["music"].startswith("file: song.wav")
    bed = read_wav(out / "audio" / "music.wav")
    assert bed.shape[0] == round(rep["film"]["seconds"] * 48_000)
    env = envelope(bed, hop=4800)
    assert env[: len(env) - 12].min() > 0.1  # playing all through (faded out only at the very end)


def test_report_escapes_the_soundtrack_text(film):
    from cinerl.assembly.report.html import render

    data = report(film)
    data["sound"]["narration"][0]["text"] = "<script>alert(1)</script>"
    data["sound"]["warnings"] = ["<i>odd</i>"]
    page = render(data, film, 10)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "&lt;i&gt;odd&lt;/i&gt;" in page
