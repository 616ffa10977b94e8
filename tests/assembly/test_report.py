"""cinerl.assembly.report.build: report.json + a self-contained, escaped report.html."""

from __future__ import annotations

import base64
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from cinerl.assembly.report import build as report_mod
from cinerl.assembly.report.build import render_html, write_report
from cinerl.core.media import save_jpeg, save_png, write_mp4
from cinerl.core.schema import (
    AttemptRecord,
    Character,
    ComponentScore,
    Location,
    NamedColor,
    RewardBreakdown,
    Scene,
    StoryBible,
)

XSS = "<script>alert(1)</script>"

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
STRUCTURAL = {
    "html",
    "head",
    "body",
    "main",
    "header",
    "footer",
    "section",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "svg",
    "video",
    "style",
    "title",
    "h1",
    "h2",
    "h3",
    "p",
    "dl",
    "dt",
    "dd",
    "details",
    "summary",
    "span",
    "strong",
    "code",
    "a",
}


class Checker(HTMLParser):
    """Tracks open elements; records any end tag that does not close the innermost element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.scripts = 0
        self.attrs: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag == "script":
            self.scripts += 1
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs.extend((tag, k, v or "") for k, v in attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Checker:
    checker = Checker()
    checker.feed(page)
    checker.close()
    return checker


def _component(name, group, status="ok", value=None, reason=""):
    return ComponentScore(name=name, group=group, status=status, value=value, reason=reason)


def make_report(out_dir, film_frames=12):
    out_dir.mkdir(parents=True, exist_ok=True)
    bible = StoryBible(
        seed_prompt=f"A keeper & her son {XSS}",
        title="The <Drowning> Lantern",
        logline='Mother and son sail into a storm "to save" the festival.',
        characters=[
            Character(
                id="mara",
                name="Mara <b>Vell</b>",
                role="keeper",
                age=64,
                gender="woman",
                wardrobe=[
                    NamedColor(name="navy coat", rgb=(20, 30, 80)),
                    NamedColor(name="red scarf", rgb=(200, 30, 40)),
                ],
                garments=["coat", "scarf"],
                hair=NamedColor(name="grey", rgb=(160, 160, 160)),
            ),
            Character(
                id="tom",
                name="Tom",
                role="son",
                age=30,
                gender="man",
                wardrobe=[NamedColor(name="yellow slicker", rgb=(230, 200, 40))],
            ),
        ],
        locations=[
            Location(
                id="harbour",
                name="Old Harbour",
                scenery_type="harbor",
                palette=[
                    NamedColor(name="slate", rgb=(80, 90, 100)),
                    NamedColor(name="amber", rgb=(255, 180, 60)),
                ],
            ),
        ],
        scenes=[
            Scene(
                index=0,
                title="Storm <1>",
                beat="beginning",
                duration_s=4,
                character_ids=["mara", "tom"],
                location_id="harbour",
                action="They row.",
            ),
            Scene(
                index=1,
                title="Lanterns",
                beat="end",
                duration_s=4,
                character_ids=["mara"],
                location_id="harbour",
                action="She lights them.",
            ),
        ],
    )
    scenes = []
    for s in range(2):
        attempts = []
        for a in range(3):
            total = [0.41, 0.67, 0.58][a] - 0.05 * s
            comps = {
                "temporal_flicker": _component("temporal_flicker", "visual_quality", value=0.9 + a / 100),
                "narrative_judge": _component(
                    "narrative_judge",
                    "narrative_coherence",
                    status="unavailable",
                    reason=f"no LLM configured {XSS}",
                ),
                "identity": _component(
                    "identity", "consistency", status="not_applicable", reason="no characters in shot"
                ),
            }
            reward = RewardBreakdown(
                total=total,
                components=comps,
                groups={"visual_quality": 0.8, "narrative_coherence": None},
                weights={"visual_quality": 1.0},
                seconds=0.4,
            )
            thumb_rel = f"scenes/scene_{s:02d}/attempt_{a:02d}_thumb.jpg"
            img = np.full((18, 32, 3), 40 * a + 60 * s, np.uint8)
            save_jpeg(img, out_dir / thumb_rel)
            save_png(img, out_dir / f"scenes/scene_{s:02d}/attempt_{a:02d}_last.png")
            rec = AttemptRecord(
                scene=s,
                attempt=a,
                seed=1000 + 10 * s + a,
                prompt=f'scene {s} attempt {a} prompt: wide shot {XSS} of "Mara" & Tom',
                negative_prompt="blurry <ugly>",
                action={"shot_size": "wide", "lens": f"{24 + a}mm"},
                log_prob=-9.1 + a,
                reward=reward,
                clip_path=f"scenes/scene_{s:02d}/attempt_{a:02d}.mp4",
                last_frame_path=f"scenes/scene_{s:02d}/attempt_{a:02d}_last.png",
                thumbnail_path=thumb_rel,
                timings={"render": 1.0 + a, "score": 0.4},
            )
            attempts.append(rec.model_dump(mode="json"))
        learn = {
            "approx_kl": 0.0126 + s,
            "clip_fraction": 0.25,
            "entropy": 5.5,
            "entropy/lighting": 1.5 - s / 10,
        }
        scenes.append(
            {"scene": s, "title": bible.scenes[s].title, "chosen": 1, "attempts": attempts, "learn": learn}
        )
    write_mp4(np.full((film_frames, 32, 48, 3), 90, np.uint8), 12, out_dir / "film.mp4")
    return {
        "title": bible.title,
        "seed_prompt": bible.seed_prompt,
        "seed": 7,
        "backend": "previz",
        "bible": bible.model_dump(mode="json"),
        "policy": {
            "mode": "learn",
            "algorithm": "grpo",
            "path": "policy/<p>.json",
            "version_start": 3,
            "version_end": 6,
        },
        "settings": {"attempts": 3, "note": XSS, "nested": {"a": [1, 2]}},
        "stages": {
            "plan": 0.1,
            "references": 0.3,
            "render": 5.0,
            "score": 2.0,
            "learn": 0.5,
            "stitch": 1.0,
            "report": 0.2,
        },
        "scenes": scenes,
        "film": {
            "path": "film.mp4",
            "srt": "film.srt",
            "seconds": 1.0,
            "frames": film_frames,
            "transition": "cut",
        },
    }


@pytest.fixture()
def built(tmp_path):
    out = tmp_path / "run"
    report = make_report(out)
    json_path, html_path = write_report(report, out)
    return report, out, json_path, html_path


def test_write_report_files(built):
    report, out, json_path, html_path = built
    assert json_path == out / "report.json" and html_path == out / "report.html"
    assert json.loads(json_path.read_text(encoding="utf-8")) == report
    assert json_path.read_text(encoding="utf-8").startswith('{\n  "title"')
    assert not [n for n in os.listdir(out) if ".tmp" in n or n.startswith(".")]


def test_user_text_is_escaped(built):
    report, out, _, html_path = built
    page = html_path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "The &lt;Drowning&gt; Lantern" in page
    assert "Mara &lt;b&gt;Vell&lt;/b&gt;" in page and "<b>Vell" not in page
    checker = parse(page)
    assert checker.scripts == 0
    for scene in report["scenes"]:
        for attempt in scene["attempts"]:
            import html as html_lib

            assert html_lib.escape(attempt["prompt"], quote=True) in page
            # the parser sees the prompt as text, exactly as the user wrote it
            assert any(attempt["prompt"] in t for t in checker.text)


def test_structure_and_self_contained(built):
    report, out, _, _ = built
    _, html_path = write_report(report, out, self_contained=True)  # --self-contained: one file
    page = html_path.read_text(encoding="utf-8")
    checker = parse(page)
    assert checker.errors == []
    assert [t for t in checker.stack if t in STRUCTURAL] == []
    for tag in ("html", "head", "body", "style", "video", "svg", "polyline", "table"):
        assert checker.counts.get(tag, 0) >= 1, tag
    assert page.startswith("<!DOCTYPE html>")
    # no external resources at all
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert checker.counts.get("link", 0) == 0
    # every thumbnail (the chosen one in each scene's head, then every take's) and the (small)
    # film are embedded
    imgs = [v for t, k, v in checker.attrs if t == "img" and k == "src"]
    assert len(imgs) == 2 + 6 and all(v.startswith("data:image/jpeg;base64,") for v in imgs)
    thumb = (out / report["scenes"][0]["attempts"][1]["thumbnail_path"]).read_bytes()
    assert imgs[0] == "data:image/jpeg;base64," + base64.b64encode(thumb).decode()
    sources = [v for t, k, v in checker.attrs if t == "source" and k == "src"]
    assert sources == ["data:video/mp4;base64," + base64.b64encode((out / "film.mp4").read_bytes()).decode()]


def test_attempt_tables_mark_chosen_and_statuses(built):
    report, _, _, html_path = built
    page = html_path.read_text(encoding="utf-8")
    assert page.count('data-chosen="true"') == 2  # one chosen attempt per scene
    assert page.count("★ chosen") == 2
    assert page.count('<tr class="chosen"') == 2
    rows = re.findall(r'<tr class="(?:chosen|attempt)" data-attempt="(\d+)"', page)
    assert rows == ["0", "1", "2", "0", "1", "2"]
    assert "0.670" in page and "0.410" in page  # totals
    assert "shot_size=wide" in page and "lens=25mm" in page
    # non-ok components show their status, with the (escaped) reason as a tooltip
    assert 'title="no LLM configured &lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert ">unavailable</span>" in page and ">not_applicable</span>" in page
    assert "0.910" in page  # an ok component value
    # stage times, policy version and swatches
    for stage in report["stages"]:
        assert f"<td>{stage}</td>" in page
    assert "3 → 6" in page and "grpo" in page
    assert "background:rgb(200,30,40)" in page and "background:rgb(255,180,60)" in page


def test_reward_curve_points(built):
    report, _, _, html_path = built
    page = html_path.read_text(encoding="utf-8")
    plot = page.split('aria-label="reward per attempt"', 1)[1].split("</svg>", 1)[0]
    polylines = re.findall(r'<polyline points="([^"]+)"', plot)
    # one running best per scene (rewards of different scenes do not compare), then the totals
    assert len(polylines) == len(report["scenes"]) + 1
    *bests, totals = ([tuple(map(float, pt.split(","))) for pt in p.split()] for p in polylines)
    n_attempts = sum(len(s["attempts"]) for s in report["scenes"])
    assert len(totals) == n_attempts == sum(len(b) for b in bests)
    assert [len(b) for b in bests] == [len(s["attempts"]) for s in report["scenes"]]
    best = [pt for b in bests for pt in b]
    # svg y grows downwards: within a scene the running best never goes down (y never increases)
    for b in bests:
        assert all(b2[1] <= b1[1] + 1e-9 for b1, b2 in zip(b, b[1:]))
    assert all(b[1] <= t[1] + 1e-9 for b, t in zip(best, totals))
    # scene 2's best starts again at its first take (0.36), under scene 1's best (0.67)
    assert bests[1][0] == totals[3] and bests[1][0][1] > bests[0][-1][1]
    # each scene also has its own small curve, one dot per take
    sparks = re.findall(r'aria-label="scene (\d) reward per take"', page)
    assert sparks == ["1", "2"]


def test_large_film_is_linked_not_embedded(tmp_path, monkeypatch):
    out = tmp_path / "run"
    report = make_report(out)
    monkeypatch.setattr(report_mod, "EMBED_VIDEO_MAX_BYTES", 100)
    page = render_html(report, out)
    sources = [v for t, k, v in parse(page).attrs if t == "source" and k == "src"]
    assert sources == ["film.mp4"]


def test_tolerates_missing_optional_keys(tmp_path):
    minimal = {
        "title": "Bare",
        "scenes": [
            {
                "scene": 0,
                "chosen": 0,
                "attempts": [{"attempt": 0, "prompt": "p <x>", "reward": {"total": 0.5}}],
            }
        ],
    }
    page = render_html(minimal, tmp_path)
    checker = parse(page)
    assert checker.errors == [] and "p &lt;x&gt;" in page and "no thumbnail" in page
    empty = render_html({}, tmp_path)
    assert parse(empty).errors == [] and "<video" in empty
    write_report({"title": "x", "bible": None, "stages": None, "scenes": None}, tmp_path / "r")
    assert (tmp_path / "r" / "report.html").is_file()


# ------------------------------------------------------------------------------------------
# the typed report (cinerl.core.schema.FilmReport)


LLM_SECTION = {
    "steps": [
        {
            "step": "plan.cast",
            "provider": "openai",
            "model": f"m {XSS}",
            "calls": [{"prompt_tokens": 10, "completion_tokens": 5, "seconds": 0.5, "cached": False}],
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "seconds": 0.5,
            "repairs": 1,
            "fell_back": True,
            "warning": "gave up <svg onload=alert(1)>",
        }
    ],
    "prompt_tokens": 10,
    "completion_tokens": 5,
    "seconds": 0.5,
    "scene_prompts": {
        "source": "openai:m",
        "scenes": [
            {
                "scene": 0,
                "title": "Storm",
                "mode": "t2v",
                "enriched": "e",
                "issues": ["too long"],
                "revised_prompt": "r <img src=x onerror=alert(1)>",
                "base_prompt": "r <img onerror>",
                "warning": "",
                "negative_prompt": "blurry",
            }
        ],
    },
    "warnings": ["gave up <svg onload=alert(1)>"],
}


def _holds(big, small) -> bool:
    """Whether `big` holds everything `small` says (dicts may have more keys)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _holds(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return (
            isinstance(big, list) and len(big) == len(small) and all(_holds(b, v) for b, v in zip(big, small))
        )
    return big == small


def test_film_report_round_trips_the_json(built):
    from cinerl.core.schema import FilmReport

    report, out, json_path, _ = built
    # every key the director writes today
    scenes = [
        {**sc, "beat": "beginning", "policy_version": 4 + i, "learn": {"loss": 0.5}}
        for i, sc in enumerate(report["scenes"])
    ]
    current = {
        **report,
        "references": {"character:mara": "references/character_mara.png"},
        "scenes": scenes,
        "prompt_opt": {},
        "llm": LLM_SECTION,
        "film": {**report["film"], "scene_offsets": [0.0, 0.5]},
    }
    assert FilmReport.model_validate(current).model_dump(mode="json") == current
    with_opt = {
        **current,
        "prompt_opt": {
            "method": "rapo",
            "artifact": "story/rapo.json",
            "scenes": [{"scene": 0, "query": "q", "added": ["a"], "left_out": []}],
        },
    }
    assert FilmReport.model_validate(with_opt).model_dump(mode="json") == with_opt
    # a report written before prompt_opt, llm and references existed still reads
    old = FilmReport.read(json_path)
    assert old.scenes[0].chosen_attempt.reward.total == pytest.approx(0.67)
    assert old.prompt_opt is None and old.llm.steps == [] and old.policy.version_end == 6
    assert _holds(old.model_dump(mode="json"), report)
    # write_report writes the typed report as the same JSON and the same page
    typed_dir = out.parent / "typed"
    typed_json, typed_html = write_report(FilmReport.model_validate(current), typed_dir)
    assert json.loads(typed_json.read_text(encoding="utf-8")) == current
    assert render_html(FilmReport.model_validate(current), out) == render_html(current, out)


def test_film_report_read_names_the_file(tmp_path):
    from cinerl.core.errors import UserError
    from cinerl.core.schema import FilmReport
    from cinerl.core.store import read_report

    with pytest.raises(UserError, match=f"{tmp_path}/report.json is missing"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="report.json is not a valid CineRL report"):
        FilmReport.read(tmp_path)
    (tmp_path / "report.json").write_text('{"title": "x"}', encoding="utf-8")
    with pytest.raises(UserError, match=r"report.json is not a valid CineRL report .*seed_prompt"):
        FilmReport.read(tmp_path / "report.json")


def test_llm_section_is_rendered_and_escaped(tmp_path):
    out = tmp_path / "run"
    report = {**make_report(out), "llm": LLM_SECTION}
    page = render_html(report, out)
    checker = parse(page)
    assert checker.errors == [] and checker.scripts == 0
    assert "<h2>Language model</h2>" in page and "<td>plan.cast</td>" in page
    assert "10 prompt tokens · 5 completion tokens · 0.50 s" in page
    assert "&lt;svg onload=alert(1)&gt;" in page and "<svg onload" not in page
    assert "r &lt;img onerror&gt;" in page and "<img onerror" not in page
    assert "<img src=x" not in page  # the critic's revision is not shown, the base prompt is


def test_policy_updates_show_cleanrl_diagnostics_per_scene(built):
    _, _, _, html_path = built
    page = html_path.read_text()
    updates = page.split('<h3 class="sub">Updates</h3>', 1)[1].split("</table>", 1)[0]
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", updates)
    assert heads[:5] == ["scene", "approx kl", "clip fraction", "entropy", "lighting"]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", updates)
    assert cells[:5] == ["1", "0.013", "0.250", "5.500", "1.500"]  # scene 1 (0-based 0)
    assert cells[5:7] == ["2", "1.013"] and "1.400" in cells


# ------------------------------------------------------------------------------------------
# the report for a filmmaker: every take, the references, flags, linked media, the workbench


def test_linked_by_default_every_take_side_by_side(tmp_path):
    out = tmp_path / "run"
    report = make_report(out, film_frames=48)
    for s in range(2):  # the takes' clips exist: each take gets a player
        for a in range(3):
            write_mp4(
                np.full((6, 32, 48, 3), 30 * a, np.uint8),
                12,
                out / f"scenes/scene_{s:02d}/attempt_{a:02d}.mp4",
            )
    save_png(np.full((18, 32, 3), 200, np.uint8), out / "references/character_mara.png")
    report["references"] = {
        "character:mara": "references/character_mara.png",
        "location:gone": "references/x.png",
    }
    linked = render_html(report, out)
    embedded = render_html(report, out, self_contained=True)
    assert "data:video" not in linked and "data:image" not in linked
    # a linked page leaves the film and the takes beside it; --self-contained carries them
    media = sum(
        (out / f).stat().st_size
        for f in ["film.mp4", *(f"scenes/scene_0{s}/attempt_0{a}.mp4" for s in range(2) for a in range(3))]
    )
    assert len(embedded) - len(linked) > media
    checker = parse(linked)
    assert checker.errors == [] and checker.scripts == 0
    sources = [v for t, k, v in checker.attrs if t == "source" and k == "src"]
    takes = [f"scenes/scene_{s:02d}/attempt_{a:02d}.mp4" for s in range(2) for a in range(3)]
    assert sources == ["film.mp4", *takes]  # the film, then every take's player, in order
    posters = [v for t, k, v in checker.attrs if t == "video" and k == "poster"]
    assert posters == [f"scenes/scene_{s:02d}/attempt_{a:02d}_thumb.jpg" for s in range(2) for a in range(3)]
    assert re.findall(r'data-take="(\d+)"', linked) == ["1", "2", "3", "1", "2", "3"]
    assert linked.count('class="take is-chosen"') == 2 and 'Take 2</strong> <span class="marker">' in linked
    # the references every scene is held to (a missing file is left out)
    imgs = [v for t, k, v in checker.attrs if t == "img" and k == "src"]
    assert "references/character_mara.png" in imgs and "references/x.png" not in imgs
    assert "character: <strong>Mara &lt;b&gt;Vell&lt;/b&gt;</strong>" in linked
    # each take's breakdown by group: visual quality 0.8 is a bar of 80%, narrative not scored
    assert linked.count("width:80%") == 6 and linked.count("not scored") == 6


def test_weak_chosen_take_and_stale_scene_are_flagged(tmp_path):
    out = tmp_path / "run"
    report = make_report(out)
    chosen = report["scenes"][1]["attempts"][1]
    chosen["reward"]["groups"]["character_consistency"] = 0.12
    report["scenes"][0]["attempts"][1]["reward"]["groups"]["character_consistency"] = 0.8
    report["continuity_stale"] = [1]
    page = render_html(report, out)
    scenes = page.split('<section class="scene"')[1:]
    assert "weak character consistency: 0.12 (under 0.30)" in scenes[1]
    assert "weak" not in scenes[0].split('<div class="takes">')[0]
    assert ">continuity stale</span>" in scenes[1] and "continuity stale" not in scenes[0]
    assert scenes[1].count('class="bar weak"') == 1  # only the chosen take's low group


def test_workbench_section_estimate_budget_edits(tmp_path):
    out = tmp_path / "run"
    report = {
        **make_report(out),
        "estimate": {
            "clips": 9,
            "frames": 300,
            "steps": 0,
            "seconds": 12.5,
            "kind": "CPU seconds",
            "source": "measured on this machine",
            "measured": {"clips": 3, "frames": 100, "steps": 0, "seconds": 4.25},
        },
        "budget": {
            "budget_s": 5.0,
            "spent_s": 4.25,
            "cuts": [{"scene": 0, "kept": 1, "planned": 3, "spent": 2.0}],
        },
        "edits": [
            {"kind": "retake", "params": {"scene": 2, "attempts": 2, "prompt": None}, "status": "done"}
        ],
    }
    page = render_html(report, out)
    section = page.split("<h2>Estimate, budget and edits</h2>", 1)[1].split("</section>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", section)
    assert cells[:9] == ["clips", "9", "3", "frames", "300", "100", "denoising steps", "0", "0"]
    assert cells[9:12] == ["seconds (CPU seconds)", "12.5", "4.2"] or cells[9:12] == [
        "seconds (CPU seconds)",
        "12.5",
        "4.3",
    ]
    assert "budget 5.0 s · spent 4.2 s" in section or "budget 5.0 s · spent 4.3 s" in section
    assert ["1", "1", "3", "2.0"] == cells[12:16]
    assert "<td>retake</td><td>scene=2, attempts=2</td><td>done</td>" in section
