"""The film's soundtrack, stage by stage, each stem a committed artifact of the run store.

:func:`speak_lines` speaks every scene's narration line (``audio/narration_NN.wav``; a resumed
run reads finished lines back instead of speaking them again), :func:`add_soundtrack` adds the
music bed (``audio/music.wav``), the mix (``audio/mix.wav``) and muxes it into the film. Every
stem's key is a digest of what made it, so a changed setting remakes exactly the stems it
touches. The report gets :func:`sound_report`'s dict.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cinerl.assembly.audio import music as music_mod
from cinerl.assembly.audio.mix import Mix, mix, place_lines
from cinerl.assembly.audio.speech import RATE, espeak_speak, fit_line, piper_speak, piper_voice
from cinerl.assembly.audio.voices import CAST, Voice, scene_voice
from cinerl.assembly.audio.writer import mux_audio, read_wav, write_wav
from cinerl.core.errors import Unavailable
from cinerl.core.failpoints import fault_point
from cinerl.core.media import atomic_write_text
from cinerl.core.schema import Scene, StoryBible
from cinerl.core.store import RunStore, sha256_file

__all__ = ["Line", "add_soundtrack", "narration_text", "speak_lines", "speech_engine"]

log = logging.getLogger(__name__)
TAIL_S = 0.3  # quiet kept at the end of a scene after its line


@dataclass
class Line:
    """One scene's narration as spoken: where it sits in the scene and what was said."""

    scene: int
    text: str
    audio: np.ndarray
    lead_in: float
    speedup: float = 1.0
    trimmed: bool = False
    warnings: list[str] = field(default_factory=list)
    voice: str = ""  # who spoke it, in which voice (voices.Voice.describe)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def narration_text(scene: Scene) -> str:
    """The scene's planned line; a bible planned before narration existed speaks its action."""
    return " ".join((scene.narration or scene.action or "").split())


def speech_engine(audio) -> tuple[Callable | None, str, list[str]]:
    """``(speak(text, wpm, voice) -> samples, description, warnings)`` for the audio settings:
    piper when asked and its voice loads (one voice for every line, paced by ``wpm``), else
    espeak-ng in each line's :class:`Voice` (with the reason piper is unavailable); ``speak`` is
    None, with the reason, when espeak-ng's wheel is not installed."""
    warnings: list[str] = []
    if importlib.util.find_spec("espeakng_loader") is None and audio.tts == "espeak":
        warnings.append(
            "no narration: espeak-ng needs the espeakng-loader package (pip install 'cinerl[sound]')"
        )
        log.warning("%s", warnings[-1])
        return None, "", warnings
    if audio.tts == "piper":
        try:
            model = piper_voice(audio.tts_model)
            return (
                lambda text, wpm, voice: piper_speak(model, text, wpm / audio.rate_wpm),
                f"piper {Path(audio.tts_model).name}",
                warnings,
            )
        except Unavailable as e:
            warnings.append(f"{e}; narrating with espeak-ng instead")
            log.warning("%s", warnings[-1])
    one = f"espeak-ng {audio.voice}, {audio.rate_wpm} wpm, pitch {audio.pitch}"
    return (
        lambda text, wpm, voice: espeak_speak(text, voice.name, wpm, voice.pitch),
        "espeak-ng, the cast's voices" if audio.voice.strip().lower() == CAST else one,
        warnings,
    )


def speak_lines(
    bible: StoryBible, durations: list[float], audio, store: RunStore, out_dir: Path
) -> tuple[list[Line], str, list[str]]:
    """Every scene's line spoken to fit ``durations[i]`` (its length in the film) in its voice
    (voices.py), cached per scene as ``audio/narration_NN.wav`` (+ ``.json``: what was said, by
    whom, how it was made to fit)."""
    speak, engine, warnings = speech_engine(audio)
    lines: list[Line] = []
    if speak is None:
        return lines, engine, warnings
    piper = engine.startswith("piper")
    for scene, seconds in zip(bible.scenes, durations):
        text = narration_text(scene)
        if not text:
            continue
        voice = scene_voice(scene, bible, audio)
        if piper:  # one piper voice speaks every line; only the pace is the character's
            voice = Voice(engine, voice.wpm, 0, voice.speaker)
        room = max(0.5, seconds - audio.lead_in_s - TAIL_S)
        stem = out_dir / "audio" / f"narration_{scene.index:02d}"
        key = f"narration_{scene.index:02d}:{_digest(text, round(room, 3), engine, voice)}"

        def make(text=text, room=room, scene=scene, voice=voice):
            return fit_line(
                text,
                room,
                lambda t, wpm: speak(t, wpm, voice),
                voice.wpm,
                label=f"scene {scene.index + 1} narration",
            )

        def write(sp, stem=stem, voice=voice) -> Path:
            meta = {
                "text": sp.text,
                "speedup": sp.speedup,
                "trimmed": sp.trimmed,
                "warnings": sp.warnings,
                "voice": voice.describe(),
            }
            atomic_write_text(stem.with_suffix(".json"), json.dumps(meta, indent=2))
            return write_wav(sp.audio, stem.with_suffix(".wav"))

        def read(path: Path, text=text) -> dict:
            meta_path = path.with_suffix(".json")
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"text": text}
            return {"audio": read_wav(path), **meta}

        got = store.cached("audio", key, make, write, read)
        fault_point(f"audio.after_narration_{scene.index:02d}")  # the line is committed
        line = Line(
            scene.index,
            got["text"],
            got["audio"],
            audio.lead_in_s,
            got.get("speedup", 1.0),
            got.get("trimmed", False),
            got.get("warnings", []),
            got.get("voice", voice.describe()),
        )
        for w in line.warnings:
            log.warning("%s", w)
        lines.append(line)
    return lines, engine, warnings


def narration_cues(lines: list[Line], offsets: list[float]) -> list[tuple[float, float, str]]:
    """Subtitle cues of the narration with its real timing in the film."""
    return [
        (offsets[ln.scene] + ln.lead_in, offsets[ln.scene] + ln.lead_in + ln.seconds, ln.text) for ln in lines
    ]


def _music(bible: StoryBible, offsets: list[float], seconds: float, settings, store, out_dir: Path):
    """The bed (cached as audio/music.wav) and a line saying what it is; (None, "none") when off."""
    a, asm = settings.audio, settings.assembly
    choice = a.music.strip()
    if choice.lower() == "none":
        return None, "none"
    fade = asm.crossfade_frames / settings.run.fps if asm.transition == "crossfade" else 0.05
    if choice.lower() == "generated":
        moods = [
            music_mod.scene_mood(
                " ".join([sc.action, sc.time_of_day, sc.weather or "", bible.logline]),
                sc.beat,
                np.random.default_rng([settings.run.seed, sc.index]),
            )
            for sc in bible.scenes
        ]
        what = "generated: " + "; ".join(m.describe() for m in moods)
        key = _digest(
            "generated", moods, [round(o, 4) for o in offsets], round(seconds, 4), settings.run.seed, fade
        )

        def make():
            return music_mod.generated_bed(moods, offsets, seconds, settings.run.seed, fade)
    else:
        path = Path(choice).expanduser()
        music_mod.check_music_file(path)  # a UserError of one line before anything is made
        what = f"file: {path.name} (looped or trimmed to {seconds:.1f} s)"
        key = _digest("file", sha256_file(path), round(seconds, 4))

        def make():
            return music_mod.load_music(path, seconds)

    bed = store.cached(
        "audio", f"music:{key}", make, lambda x: write_wav(x, out_dir / "audio" / "music.wav"), read_wav
    )
    fault_point("audio.after_music")
    return bed, what


def add_soundtrack(
    film: Path,
    bible: StoryBible,
    lines: list[Line],
    offsets: list[float],
    seconds: float,
    settings,
    store: RunStore,
    out_dir: Path,
) -> tuple[dict, np.ndarray | None]:
    """Music, mix (``audio/mix.wav``) and the AAC track muxed into ``film``; returns the mix's
    figures for the report and the track. Nothing is added when there is neither narration nor
    music."""
    a = settings.audio
    bed, what = _music(bible, offsets, seconds, settings, store, out_dir)
    starts = [(offsets[ln.scene] + ln.lead_in, ln.audio) for ln in lines]
    if bed is None and not starts:
        return {"music": what, "track": False}, None
    voice = place_lines(starts, seconds)
    levels = (a.loudness_lufs, a.true_peak_dbtp, a.duck_db, a.music_db)
    key = _digest(
        hashlib.sha256(voice.tobytes()).hexdigest(),
        None if bed is None else hashlib.sha256(np.ascontiguousarray(bed).tobytes()).hexdigest(),
        levels,
    )
    result: dict = {}

    def make() -> Mix:
        return mix(
            voice, bed, a.loudness_lufs, a.true_peak_dbtp, a.duck_db if bed is not None else 0, a.music_db
        )

    def write(m: Mix) -> Path:
        atomic_write_text(out_dir / "audio" / "mix.json", json.dumps(m.figures(), indent=2))
        return write_wav(m.audio, out_dir / "audio" / "mix.wav")

    def read(path: Path) -> np.ndarray:
        result.update(json.loads((out_dir / "audio" / "mix.json").read_text()))
        return read_wav(path)

    track = store.cached("audio", f"mix:{key}", make, write, read)
    fault_point("audio.after_mix")
    mux_audio(film, track, film)
    return {"music": what, "track": True, **result}, track


def finish_film(
    film: Path,
    bible: StoryBible,
    info: dict,
    durations: list[float],
    settings,
    store: RunStore,
    out_dir: Path,
    cues: list[tuple[float, float, str]],
) -> tuple[dict, dict, list[tuple[float, float, str]]]:
    """After the stitch: narration, then the cards and burned-in subtitles (when asked: they
    shift the scenes by the title card), then music, mix and the AAC track. Returns the film's
    info (offsets moved by a title card), the report's ``sound`` dict and the subtitle cues
    (the narration with its timing when there is narration, else ``cues``)."""
    from cinerl.assembly.stitch import overlay_film

    a, asm = settings.audio, settings.assembly
    lines, engine, warnings = (
        ([], "", []) if not a.narration else speak_lines(bible, durations, a, store, out_dir)
    )
    if lines:
        cues = narration_cues(lines, info["scene_offsets"])
    if asm.burn_subtitles or asm.title_card or asm.end_card:
        info = overlay_film(
            film,
            info,
            cues if asm.burn_subtitles else [],
            title=(bible.title, bible.logline) if asm.title_card else None,
            cast=[f"{c.name}" + (f", {c.role}" if getattr(c, "role", "") else "") for c in bible.characters]
            if asm.end_card
            else None,
            palette=[tuple(c.rgb) for loc in bible.locations for c in loc.palette][:3],
        )
        shift = info.get("title_seconds", 0.0)
        cues = [(s + shift, e + shift, t) for s, e, t in cues]
    offsets = info["scene_offsets"]
    figures, _ = add_soundtrack(film, bible, lines, offsets, info["seconds"], settings, store, out_dir)
    sound = {
        "tts": engine,
        "narration": [
            {
                "scene": ln.scene,
                "start": round(offsets[ln.scene] + ln.lead_in, 3),
                "end": round(offsets[ln.scene] + ln.lead_in + ln.seconds, 3),
                "text": ln.text,
                "speedup": round(ln.speedup, 3),
                "trimmed": ln.trimmed,
                "voice": ln.voice,
            }
            for ln in lines
        ],
        "warnings": warnings + [w for ln in lines for w in ln.warnings],
        "target_lufs": a.loudness_lufs,
        "ceiling_dbtp": a.true_peak_dbtp,
        **figures,
    }
    return info, sound, cues
