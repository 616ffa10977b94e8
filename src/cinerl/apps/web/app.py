"""`cinerl ui`: the director's workbench, a Gradio app over a folder of runs.

Tabs follow a film: New film (the estimate, plan only or straight through), Storyboard (the
plan with wardrobe swatches and reference stills, edited as JSON and approved), Shooting (live
progress from the background worker, each take as it lands, the reward curve), Scenes (every
take side by side with its player and reward breakdown; choose, retake with an edited prompt,
cascade; continuity-stale marks) and Film (the film, its subtitles and report, the run list).

It reads runs through the run store (runtime.edits.run_view / run_info, FilmReport) and starts
work through runtime.edits on the worker (apps/web/worker.py). It binds 127.0.0.1 unless told
otherwise, refuses another host without `--auth USER:PASSWORD`, and serves files at `/runs/...`
only from inside the runs folder (anything else is a 404).
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
from pathlib import Path

from cinerl.apps.web.assets import add_routes as add_asset_routes
from cinerl.apps.web.files import resolve_in, run_dir, run_names
from cinerl.apps.web.worker import Worker
from cinerl.core.errors import Unavailable, UserError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CSS = """
.takes { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.take { border: 1px solid #d9dce3; border-radius: 6px; padding: 8px; }
.take.chosen { border: 2px solid #d9822b; background: #fff6d6; }
.take video, .take img { width: 100%; border-radius: 4px; }
.bar { display: grid; grid-template-columns: 10em 1fr 3em; gap: 4px; font-size: 11px; }
.track { background: #eef0f4; height: 8px; border-radius: 4px; margin-top: 4px; }
.fill { background: #2f6fde; height: 8px; border-radius: 4px; display: block; }
.flag { background: #fbeaea; color: #8a2a2a; border-radius: 3px; padding: 1px 6px; }
.chip { display: inline-block; margin-right: 8px; }
.sw { display: inline-block; width: 12px; height: 12px; border: 1px solid #0004; vertical-align: middle; }
.refs img { width: 160px; margin-right: 8px; border-radius: 6px; }
.mono textarea { font-family: ui-monospace, monospace; font-size: 12px; }
.runlist { border-collapse: collapse; } .runlist td, .runlist th { padding: 2px 10px; text-align: left; }
"""


def check_host(host: str, auth: str | None) -> tuple[str, str] | None:
    """The credentials, or a UserError: only localhost may go without them."""
    creds = None
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise UserError("--auth takes USER:PASSWORD (both non-empty)")
        creds = (user, password)
    if host not in LOCAL_HOSTS and creds is None:
        raise UserError(
            f"--host {host} would let other machines start films: pass --auth USER:PASSWORD or "
            "--auth-file FILE too (or bind 127.0.0.1)"
        )
    return creds


def read_auth_file(path: Path) -> str:
    """`--auth-file FILE`: USER:PASSWORD on the file's first non-empty line (a token file kept
    out of the shell history and the process list)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--auth-file {path}: cannot read it ({e.__class__.__name__})") from None
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    user, sep, password = line.partition(":")
    if not sep or not user or not password:
        raise UserError(f"--auth-file {path}: the first line must be USER:PASSWORD (both non-empty)")
    return line


def _esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _src(name: str, rel: str) -> str:
    """A run file's URL on this server (quoted path under /runs/)."""
    from urllib.parse import quote

    return "/runs/" + quote(f"{name}/{rel}")


def film_overrides(
    backend: str,
    scenes,
    takes,
    size: str,
    fps,
    music: bool = True,
    llm: str | None = None,
    llm_url: str | None = None,
) -> dict:
    """The New film tab's fields as the settings `cinerl make` sets from the same flags
    (--backend, --scenes, --attempts, --size, --fps, --music, --llm, --llm-base-url)."""
    from cinerl.core.inputs import check_scene_count

    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(size or ""))
    if not m:
        raise UserError(f"size must look like 640x360 (got {size!r})")
    check_scene_count(int(scenes) if scenes else None)
    takes = 1 if takes in (None, "") else int(takes)
    if not 1 <= takes <= 64:
        raise UserError(f"takes per scene must be between 1 and 64 (got {takes})")
    out = {
        "run.backend": backend,
        "plan.scenes": int(scenes) if scenes else None,
        "run.attempts": takes,
        "run.max_attempts": max(takes, 4),
        "run.width": int(m.group(1)),
        "run.height": int(m.group(2)),
        "run.fps": int(fps or 24),
        "audio.music": "generated" if music else "none",
    }
    if llm:
        out["llm.provider"] = llm
    if llm_url and llm_url.strip():
        out["llm.base_url"] = llm_url.strip()
    return out


# the storyboard, field by field ---------------------------------------------------------------
def parse_wardrobe(text: str) -> tuple[list, list[str]]:
    """'crimson coat, navy collar' -> the colours (NamedColor, measurable) and the garments."""
    from cinerl.core.schema import NamedColor
    from cinerl.core.vocabulary import color_rgb, find_colors

    colours, garments = [], []
    for item in (x.strip() for x in str(text or "").split(",")):
        if not item:
            continue
        found = find_colors(item)
        if not found:
            raise UserError(f"wardrobe item {item!r} names no colour cinerl knows (e.g. 'crimson coat')")
        colour = found[0]
        garment = re.sub(re.escape(colour), "", item, count=1, flags=re.IGNORECASE).strip()
        colours.append(NamedColor(name=colour, rgb=color_rgb(colour)))
        garments.append(garment or "clothes")
    if not colours:
        raise UserError("a character's wardrobe needs at least one 'colour garment'")
    return colours, garments


def wardrobe_text(character) -> str:
    garments = list(character.garments) + [""] * len(character.wardrobe)
    return ", ".join(f"{w.name} {g}".strip() for w, g in zip(character.wardrobe, garments))


def apply_fields(bible, characters: list[tuple], actions: list[str]):
    """The bible with the Storyboard fields written in: per character (name, age, gender,
    wardrobe), per scene the action. A bad value is a UserError naming the field."""
    chars = []
    for c, (name, age, gender, wardrobe) in zip(bible.characters, characters):
        if not str(name or "").strip():
            raise UserError(f"character {c.id}: the name must not be empty")
        try:
            age_ = int(float(age))
        except (TypeError, ValueError):
            raise UserError(f"character {c.id}: age must be a whole number (got {age!r})") from None
        if not 1 <= age_ <= 120:
            raise UserError(f"character {c.id}: age must be between 1 and 120 (got {age_})")
        colours, garments = parse_wardrobe(wardrobe)
        chars.append(
            c.model_copy(
                update={
                    "name": str(name).strip(),
                    "age": age_,
                    "gender": str(gender or c.gender).strip(),
                    "wardrobe": colours,
                    "garments": garments,
                }
            )
        )
    scenes = []
    for sc, action in zip(bible.scenes, actions):
        if not str(action or "").strip():
            raise UserError(f"scene {sc.index + 1}: the action must not be empty")
        scenes.append(sc.model_copy(update={"action": str(action).strip()}))
    return bible.model_copy(update={"characters": chars, "scenes": scenes})


def apply_prompts(text: str, prompts: list[str]) -> str:
    """story/scene_prompts.json with each scene's base prompt replaced (empty: the plan's own)."""
    saved = json.loads(text)
    for row in saved.get("scenes", []):
        k = int(row["scene"])
        if k < len(prompts) and str(prompts[k] or "").strip():
            row["base_prompt"] = str(prompts[k]).strip()
    return json.dumps(saved, indent=2)


# views ----------------------------------------------------------------------------------------
def _chip(name: str, rgb) -> str:
    r, g, b = (max(0, min(255, int(c))) for c in rgb)
    return (
        f'<span class="chip"><span class="sw" style="background:rgb({r},{g},{b})"></span> {_esc(name)}</span>'
    )


def storyboard_html(name: str, view: dict) -> str:
    bible = view.get("bible")
    if bible is None:
        return "<p>No plan yet.</p>"
    out = [f"<h3>{_esc(bible.title)}</h3><p>{_esc(bible.logline)}</p><h4>Characters</h4>"]
    for c in bible.characters:
        chips = "".join(_chip(w.name, w.rgb) for w in c.wardrobe)
        ref = f"references/character_{c.id}.png"
        img = f'<img src="{_src(name, ref)}" alt="{_esc(c.name)}">' if ref in view["references"] else ""
        out.append(f'<div class="refs">{img}<b>{_esc(c.name)}</b> ({_esc(c.role)}) {chips}</div>')
    out.append("<h4>Locations</h4>")
    for loc in bible.locations:
        chips = "".join(_chip(p.name, p.rgb) for p in loc.palette)
        ref = f"references/location_{loc.id}.png"
        img = f'<img src="{_src(name, ref)}" alt="{_esc(loc.name)}">' if ref in view["references"] else ""
        out.append(f'<div class="refs">{img}<b>{_esc(loc.name)}</b> {chips}</div>')
    out.append("<h4>Scenes</h4><ol>")
    run = run_dir_of(name)
    for sc in bible.scenes:
        keys = [f"keyframes/boundary_{b:02d}.png" for b in (sc.index, sc.index + 1)]
        frames = "".join(
            f'<img src="{_src(name, k)}" alt="keyframe" style="width:120px">'
            for k in keys
            if (run / k).is_file()
        )
        out.append(f"<li><b>{_esc(sc.title)}</b>: {_esc(sc.action)} {frames}</li>")
    out.append("</ol>")
    return "".join(out)


RUNS: Path | None = None  # set by create_app


def run_dir_of(name: str) -> Path:
    assert RUNS is not None
    return run_dir(RUNS, name)


def curve_svg(rewards: list[tuple[int, float]]) -> str:
    """Each take's reward as it landed (the scene number in the tooltip)."""
    if not rewards:
        return ""
    w, h, pad = 480, 120, 8
    n = len(rewards)

    def xy(i: int, v: float) -> str:
        x = pad + (w - 2 * pad) * (i / (n - 1) if n > 1 else 0.5)
        return f"{x:.1f},{pad + (h - 2 * pad) * (1 - max(0.0, min(1.0, v))):.1f}"

    pts = " ".join(xy(i, v) for i, (_, v) in enumerate(rewards))
    dots = "".join(
        f'<circle cx="{xy(i, v).split(",")[0]}" cy="{xy(i, v).split(",")[1]}" r="3" fill="#2f6fde">'
        f"<title>scene {s}: {v:.3f}</title></circle>"
        for i, (s, v) in enumerate(rewards)
    )
    return (
        f'<svg id="curve" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"'
        ' aria-label="reward per take">'
        f'<polyline points="{pts}" fill="none" stroke="#2f6fde" stroke-width="2"/>{dots}</svg>'
    )


def takes_html(name: str, view: dict, scene: int | None = None) -> str:
    """Takes side by side (every scene, or one): player or thumbnail, reward, breakdown."""
    stale = set(view.get("continuity_stale") or [])
    out = []
    for number, takes in sorted(view.get("scene_takes", {}).items()):
        if scene is not None and number != scene:
            continue
        mark = ' <span class="flag">continuity stale</span>' if number in stale else ""
        out.append(f"<h4>Scene {number}{mark}</h4><div class='takes'>")
        for t in takes:
            bars = "".join(
                f'<div class="bar"><span>{_esc(g.replace("_", " "))}</span>'
                + (
                    f'<span class="track"><span class="fill" style="width:{100 * v:.0f}%"></span></span>'
                    f"<span>{v:.2f}</span>"
                    if v is not None
                    else "<span>not scored</span><span>—</span>"
                )
                + "</div>"
                for g, v in t["groups"].items()
            )
            media = (
                f'<video controls preload="none" poster="{_src(name, t["thumb"])}">'
                f'<source src="{_src(name, t["clip"])}" type="video/mp4"></video>'
                if scene is not None
                else f'<img src="{_src(name, t["thumb"])}" alt="scene {number} take {t["take"]}">'
            )
            star = " ★ in the film" if t["chosen"] else ""
            out.append(
                f'<div class="take{" chosen" if t["chosen"] else ""}" data-scene="{number}"'
                f' data-take="{t["take"]}">'
                f"<b>Take {t['take']}</b>{star} · reward {t['reward']:.3f}{media}{bars}</div>"
            )
        out.append("</div>")
    return "".join(out) or "<p>No takes yet.</p>"


def film_html(name: str) -> str:
    run = run_dir_of(name)
    if not (run / "film.mp4").is_file():
        return "<p>The film is not cut yet.</p>"
    links = " · ".join(
        f'<a href="{_src(name, f)}" download id="dl-{f.replace(".", "-")}">{f}</a>'
        for f in ("film.mp4", "film.srt")
        if (run / f).is_file()
    )
    report = f' · <a href="{_src(name, "report.html")}" target="_blank" id="report-link">report</a>'
    return (
        f'<video id="film-player" controls preload="metadata" style="width:100%;max-height:480px">'
        f'<source src="{_src(name, "film.mp4")}" type="video/mp4"></video><p>{links}{report}</p>'
    )


# the app --------------------------------------------------------------------------------------
def build_ui(runs: Path, worker: Worker):
    import gradio as gr

    from cinerl.core.inputs import check_prompt
    from cinerl.runtime import edits
    from cinerl.runtime.estimate import estimate_prompt, lines

    def text(value=None, **kw):
        """Every message is HTML we escape ourselves: one component kind on the page, not two
        (gr.Markdown pulls in its parser and Prism, ~80 KB of script on every first load), and
        without gr.HTML's default click listener (a script compiled per component)."""
        return gr.HTML(value, js_on_load=None, **kw)

    def err(e: Exception) -> str:
        return f"<b>error:</b> {_esc(e)}"

    def view(name: str | None) -> dict:
        return edits.run_view(run_dir(runs, name)) if name else {}

    def overrides(backend, scenes, takes, size, fps, music, llm, llm_url) -> dict:
        return film_overrides(backend, scenes, takes, size, fps, music, llm, llm_url)

    def on_estimate(prompt, backend, scenes, takes, size, fps, budget, music, llm, llm_url):
        try:
            settings = edits.new_settings(overrides(backend, scenes, takes, size, fps, music, llm, llm_url))
            est = estimate_prompt(check_prompt(prompt), settings, budget or None)
        except (UserError, Unavailable, ValueError) as e:
            return err(e)
        return "".join(f"<p>{_esc(x)}</p>" for x in lines(est))

    def start(prompt, backend, scenes, takes, size, fps, budget, music, llm, llm_url, name, plan_only):
        try:
            text = check_prompt(prompt)
            settings = edits.new_settings(overrides(backend, scenes, takes, size, fps, music, llm, llm_url))
            out = run_dir(runs, name, new=True)
            budget_s = float(budget) if budget else None

            def work(hooks):
                edits.make(text, out, settings, plan_only=plan_only, budget_s=budget_s, hooks=hooks)

            worker.submit(name, "plan" if plan_only else "make", work)
        except (UserError, Unavailable, ValueError) as e:
            return err(e), gr.Dropdown(choices=run_names(runs)), *[gr.skip()] * 7
        what = "planning (then approve it in Storyboard)" if plan_only else "making the film"
        names = run_names(runs)
        return (
            f"<b>{_esc(name)}</b>: {what}; follow it in Shooting.",
            gr.Dropdown(choices=names if name in names else [name, *names], value=name),
            *load(name),  # the new run's (empty) tabs, and the timer on: the job is queued
        )

    def ticking(on: bool = True):
        """The 1 s timer runs only while a job does: idle, a tick would be a request and a redraw
        of three components every second, the first one landing inside the page load."""
        return gr.Timer(active=on)

    def load(name):
        """Every tab's view of one run, and the timer on while a job of it runs (a reload during
        a job follows it again)."""
        try:
            v = view(name)
        except UserError:
            v = {}
        tick = ticking(bool(name) and worker.busy(name))
        if not v:
            return "<p>Choose or start a run.</p>", "", "", "", "", runs_rows(), tick
        bible = (
            (run_dir(runs, name) / "story" / "bible.json").read_text(encoding="utf-8")
            if v.get("bible")
            else ""
        )
        return (
            storyboard_html(name, v),
            bible,
            shoot_html(name, v),
            film_html(name),
            status_line(name, v),
            runs_rows(),
            tick,
        )

    def status_line(name, v) -> str:
        job = worker.jobs.get(name)
        line = (
            f"<p><b>{_esc(name)}</b>: {_esc(v.get('status', 'starting'))}, {v.get('scenes_shot', 0)} "
            f"scenes shot, {v.get('takes', 0)} takes"
        )
        if v.get("continuity_stale"):
            line += f"; continuity stale: scene {', '.join(map(str, v['continuity_stale']))}"
        line += "</p>"
        if job is not None:
            line += f"<p>job: {_esc(job.label)} ({_esc(job.status)}) {_esc(job.stage)}</p>"
            if job.error:
                line += f"<p><b>error:</b> {_esc(job.error)}</p>"
        return line

    def shoot_html(name, v) -> str:
        """The job's last lines, the reward curve and every take (the same on a page load as
        while a job runs, so the last tick changes nothing but the new takes)."""
        job = worker.jobs.get(name)
        rewards = [(t["scene"], t["reward"]) for t in job.takes] if job else []
        if not rewards:
            rewards = [(s, t["reward"]) for s, ts in sorted(v.get("scene_takes", {}).items()) for t in ts]
        recent = "<br>".join(_esc(x) for x in (job.lines[-8:] if job else []))
        return f"<div id='log'>{recent}</div>{curve_svg(rewards)}" + takes_html(name, v)

    def live(name, bible_text):
        """A tick while a job runs: status, takes and film; the job's end also redraws the
        board and the run list, fills the bible box if it is empty (never over an edit) and
        stops the timer."""
        if not name:
            return gr.skip(), gr.skip(), "", "", "", gr.skip(), ticking(False)
        try:
            v = view(name)
            plan = run_dir(runs, name) / "story" / "bible.json"
        except UserError:  # a run the worker has not created yet
            v, plan = {}, None
        running = worker.busy(name)
        return (
            gr.skip() if running or not v else storyboard_html(name, v),
            gr.skip()
            if running or bible_text or plan is None or not plan.is_file()
            else plan.read_text(encoding="utf-8"),
            shoot_html(name, v),
            film_html(name) if v else "",
            status_line(name, v),
            gr.skip() if running else runs_rows(),
            gr.skip() if running else ticking(False),
        )

    def approve(name, bible_text):
        try:
            out = run_dir(runs, name)
            info = edits.run_info(out)
            if info is None:
                raise UserError(f"{name} holds no run")
            path = out / "story" / "bible.json"
            if bible_text and bible_text != path.read_text(encoding="utf-8"):
                edits.check_plan(bible_text, info["prompt"], path)
                from cinerl.core.media import atomic_write_text

                atomic_write_text(path, bible_text)
            worker.submit(name, "approve", lambda hooks: edits.approve(out, hooks=hooks))
        except (UserError, Unavailable) as e:
            return err(e), gr.skip()
        return f"<b>{_esc(name)}</b>: approved; shooting (see Shooting).", ticking()

    def show_scene(name, scene):
        v = view(name)
        return takes_html(name, v, int(scene or 1)) if v else ""

    def choose(name, scene, take):
        try:
            out = run_dir(runs, name)
            worker.submit(name, "choose", lambda hooks: edits.choose(out, int(scene), int(take), hooks=hooks))
        except (UserError, Unavailable) as e:
            return err(e), gr.skip()
        return f"choosing take {int(take)} of scene {int(scene)}...", ticking()

    def retake(name, scene, n, prompt, cascade):
        try:
            out = run_dir(runs, name)
            p = prompt.strip() or None

            def work(hooks):
                edits.retake(out, int(scene), int(n), p, bool(cascade), hooks=hooks)

            worker.submit(name, "retake", work)
        except (UserError, Unavailable) as e:
            return err(e), gr.skip()
        return f"retaking scene {int(scene)}...", ticking()

    def resume(name):
        try:
            out = run_dir(runs, name)
            prompt, settings = edits.run_settings(out)
            worker.submit(name, "resume", lambda hooks: edits.make(prompt, out, settings, hooks=hooks))
        except (UserError, Unavailable) as e:
            return err(e), gr.skip()
        return f"resuming {_esc(name)}...", ticking()

    def runs_rows() -> str:
        head = "".join(f"<th>{h}</th>" for h in ("run", "status", "scenes shot", "takes", "continuity stale"))
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in run_rows())
        return f'<table class="runlist"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def run_rows():
        rows = []
        for n in run_names(runs):
            info = edits.run_info(run_dir(runs, n)) or {}
            rows.append(
                [
                    n,
                    info.get("status", ""),
                    info.get("scenes_shot", 0),
                    info.get("takes", 0),
                    ", ".join(map(str, info.get("continuity_stale") or [])),
                ]
            )
        return rows

    with gr.Blocks(title="CineRL workbench") as demo:
        text("<h1>CineRL workbench</h1>")
        with gr.Row():
            run = gr.Dropdown(choices=run_names(runs), label="Run", elem_id="run", allow_custom_value=True)
            refresh = gr.Button("Refresh", elem_id="refresh", scale=0)
        status = text(elem_id="status")
        with gr.Tabs():
            with gr.Tab("New film", elem_id="tab-new"):
                prompt = gr.Textbox(label="Prompt", lines=3, elem_id="prompt")
                with gr.Row():
                    backend = gr.Dropdown(
                        ["previz", "wan"], value="previz", label="Backend", elem_id="backend"
                    )
                    scenes = gr.Number(3, precision=0, label="Scenes", elem_id="scenes")
                    takes = gr.Number(2, precision=0, label="Takes per scene", elem_id="takes")
                    size = gr.Textbox("640x360", label="Size", elem_id="size")
                    fps = gr.Number(24, precision=0, label="FPS", elem_id="fps")
                    budget = gr.Number(None, label="Budget (seconds, 0: none)", elem_id="budget")
                with gr.Row():
                    music = gr.Checkbox(True, label="Music bed", elem_id="music")
                    llm = gr.Dropdown(
                        ["auto", "offline", "openai", "transformers"],
                        value="auto",
                        label="Planner LLM (--llm)",
                        elem_id="llm",
                    )
                    llm_url = gr.Textbox(
                        label="LLM server URL (--llm-base-url; empty: none)", elem_id="llm-url"
                    )
                name = gr.Textbox(label="Run name (a folder in the runs folder)", elem_id="name")
                with gr.Row():
                    est_btn = gr.Button("Estimate", elem_id="estimate")
                    plan_btn = gr.Button("Plan only", elem_id="plan-only")
                    make_btn = gr.Button("Make the film", elem_id="make", variant="primary")
                new_out = text(elem_id="new-out")
            with gr.Tab("Storyboard", elem_id="tab-board") as board_tab:
                board = text(elem_id="board")
                # a plain textbox, not gr.Code: CodeMirror is 400 KB of script the first page
                # load would wait for (the 1 s first-load target)
                board_out = text(elem_id="board-out")
                bible = gr.Textbox(
                    label="story/bible.json (edit, then approve)",
                    lines=14,
                    max_lines=40,
                    elem_id="bible",
                    elem_classes=["mono"],
                )

                # drawn when the tab opens, when the run is changed and on Refresh: not on a page
                # load, where the tab is hidden and its ~30 fields would be built, sent and
                # mounted before anyone looks at them
                @gr.render(inputs=[run], triggers=[board_tab.select, run.input, refresh.click])
                def plan_fields(name):
                    """Characters and scenes field by field (the JSON below holds the rest); the
                    fields say interactive=True: in gr.render Gradio would draw them read-only"""
                    try:
                        v = view(name)
                    except UserError:
                        v = {}
                    plan = v.get("bible")
                    if plan is None:
                        return
                    prompts_path = run_dir(runs, name) / "story" / "scene_prompts.json"
                    rows = {}
                    if prompts_path.is_file():
                        try:
                            rows = {
                                int(r["scene"]): r.get("base_prompt") or ""
                                for r in json.loads(prompts_path.read_text(encoding="utf-8"))["scenes"]
                            }
                        except (ValueError, KeyError, TypeError):
                            rows = {}
                    fields = []
                    text("<h4>Characters</h4>")
                    for c in plan.characters:
                        with gr.Row():
                            fields += [
                                gr.Textbox(
                                    c.name,
                                    label=f"{c.id}: name",
                                    elem_id=f"char-{c.id}-name",
                                    interactive=True,
                                ),
                                gr.Number(
                                    c.age,
                                    precision=0,
                                    label="age",
                                    elem_id=f"char-{c.id}-age",
                                    interactive=True,
                                ),
                                gr.Textbox(
                                    c.gender, label="gender", elem_id=f"char-{c.id}-gender", interactive=True
                                ),
                                gr.Textbox(
                                    wardrobe_text(c),
                                    label="wardrobe (colour garment, ...)",
                                    elem_id=f"char-{c.id}-wardrobe",
                                    scale=3,
                                    interactive=True,
                                ),
                            ]
                    text("<h4>Scenes</h4>")
                    for sc in plan.scenes:
                        with gr.Row():
                            fields.append(
                                gr.Textbox(
                                    sc.action,
                                    label=f"Scene {sc.index + 1}: action",
                                    lines=2,
                                    elem_id=f"scene-{sc.index + 1}-action",
                                    interactive=True,
                                )
                            )
                            fields.append(
                                gr.Textbox(
                                    rows.get(sc.index, ""),
                                    label="prompt"
                                    + ("" if rows else " (this plan has no scene prompts file)"),
                                    lines=2,
                                    interactive=bool(rows),
                                    elem_id=f"scene-{sc.index + 1}-prompt",
                                )
                            )
                    save = gr.Button("Save the fields", elem_id="save-fields")

                    def save_fields(*values):
                        n = len(plan.characters)
                        chars = [tuple(values[4 * i : 4 * i + 4]) for i in range(n)]
                        rest = values[4 * n :]
                        try:
                            out = run_dir(runs, name)
                            info = edits.run_info(out) or {}
                            if info.get("status") != "awaiting approval":
                                raise UserError(f"{name} is not awaiting approval: retake a scene instead")
                            new = apply_fields(plan, chars, list(rest[0::2]))
                            text = new.model_dump_json(indent=2)
                            path = out / "story" / "bible.json"
                            edits.check_plan(text, info["prompt"], path)
                            from cinerl.core.media import atomic_write_text

                            atomic_write_text(path, text)
                            if rows:
                                atomic_write_text(
                                    prompts_path,
                                    apply_prompts(prompts_path.read_text(encoding="utf-8"), list(rest[1::2])),
                                )
                        except (UserError, Unavailable) as e:
                            return err(e), gr.update()
                        return "saved: approve to shoot it", text

                    save.click(save_fields, fields, [board_out, bible])

                approve_btn = gr.Button("Save and approve", elem_id="approve", variant="primary")
            with gr.Tab("Shooting", elem_id="tab-shoot"):
                shoot = text(elem_id="shoot")
                resume_btn = gr.Button("Resume an interrupted run", elem_id="resume")
                resume_out = text()
            with gr.Tab("Scenes", elem_id="tab-scenes"):
                with gr.Row():
                    scene_no = gr.Number(1, precision=0, label="Scene", elem_id="scene-no")
                    show_btn = gr.Button("Show takes", elem_id="show-takes", scale=0)
                scene_takes = text(elem_id="scene-takes")
                with gr.Row():
                    take_no = gr.Number(1, precision=0, label="Take", elem_id="take-no")
                    choose_btn = gr.Button("Choose this take", elem_id="choose")
                with gr.Row():
                    more = gr.Number(1, precision=0, label="More takes", elem_id="retake-n")
                    re_prompt = gr.Textbox(
                        label="Prompt for the new takes (empty: the plan's)", elem_id="retake-prompt"
                    )
                    cascade = gr.Checkbox(label="Cascade to stale scenes", elem_id="cascade")
                    retake_btn = gr.Button("Retake", elem_id="retake")
                scene_out = text(elem_id="scene-out")
            with gr.Tab("Film", elem_id="tab-film"):
                film = text(elem_id="film")
                # an HTML table, not gr.Dataframe (120 KB of script on the first page load)
                runs_table = text(elem_id="runs")
        timer = gr.Timer(1.0, active=False)  # on while a job runs (ticking)
        outs = [board, bible, shoot, film, status, runs_table, timer]
        # .input, not .change: a change also fires when an event sets the run (the page load,
        # Make), which would load every tab a second time
        run.input(load, [run], outs)
        refresh.click(lambda: gr.Dropdown(choices=run_names(runs)), None, [run]).then(load, [run], outs)

        # a fresh page (or a reload) lists the runs as they are now and opens the newest, in one
        # event (one round trip before the run is on the page)
        def first_view():
            names = run_names(runs)
            newest = names[0] if names else None
            return (gr.Dropdown(choices=names, value=newest), *load(newest))

        # quick, so off the queue: one POST instead of a queue join and an event stream; and no
        # progress overlays (seven animated spinners drawn and removed inside the page load)
        quiet = {"queue": False, "show_progress": "hidden"}
        demo.load(first_view, None, [run, *outs], **quiet)
        timer.tick(live, [run, bible], outs, **quiet)
        film_fields = [prompt, backend, scenes, takes, size, fps, budget, music, llm, llm_url]
        est_btn.click(on_estimate, film_fields, [new_out])
        inputs = [*film_fields, name]
        plan_btn.click(lambda *a: start(*a, True), inputs, [new_out, run, *outs])
        make_btn.click(lambda *a: start(*a, False), inputs, [new_out, run, *outs])
        approve_btn.click(approve, [run, bible], [board_out, timer])
        show_btn.click(show_scene, [run, scene_no], [scene_takes])
        choose_btn.click(choose, [run, scene_no, take_no], [scene_out, timer])
        retake_btn.click(retake, [run, scene_no, more, re_prompt, cascade], [scene_out, timer])
        resume_btn.click(resume, [run], [resume_out, timer])
    return demo


def create_app(runs: Path, auth: tuple[str, str] | None = None):
    """The FastAPI app: /runs/... (files inside the runs folder, nothing else) and the UI."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, Response

    global RUNS
    runs = Path(runs).expanduser().resolve()
    runs.mkdir(parents=True, exist_ok=True)
    RUNS = runs
    worker = Worker()
    app = FastAPI()

    if auth is not None:
        expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()

        @app.middleware("http")
        async def basic_auth(request: Request, call_next):  # every route, the UI's included
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), expected.encode()):
                return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="cinerl"'})
            return await call_next(request)

    @app.get("/runs/{path:path}")
    def run_file(path: str):
        target = resolve_in(runs, path)
        if target is None:
            raise HTTPException(status_code=404)
        return FileResponse(target)

    app.state.assets = add_asset_routes(app)  # Gradio's frontend from memory: a first load's ~60 files

    @app.get("/healthz")
    def healthz():
        return {"ok": True, "runs": str(runs)}

    app.state.worker = worker
    demo = build_ui(runs, worker)
    # the system's fonts: Gradio's default theme fetches four web fonts on a first visit, and the
    # page is drawn again once they arrive (about 10% of a first load, measured here side by side)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    return gr.mount_gradio_app(app, demo, path="/", css=CSS, theme=theme, allowed_paths=[str(runs)])


def warm(app, auth: tuple[str, str] | None = None) -> None:
    """Pay the first visit's one-off server costs before the port opens, so the first page load
    is as quick as a reload: Gradio imports matplotlib inside its first event
    (gradio.utils.MatplotlibBackendMananger, about a second on a busy machine), and FastAPI
    builds each route's dependency state when a request first matches it; the frontend's files
    are compressed now rather than inside the first visit's requests (assets.Assets.fill)."""
    try:
        import matplotlib

        matplotlib.get_backend()
    except ImportError:
        pass
    from starlette.testclient import TestClient

    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    assets = getattr(app.state, "assets", None)
    if assets is not None:
        assets.fill()
    client = TestClient(app, headers=headers)
    for route in ("/", "/config", "/healthz", "/theme.css"):
        client.get(route)


def serve(runs: Path, host: str, port: int, auth: str | None) -> None:
    import uvicorn

    creds = check_host(host, auth)
    app = create_app(runs, creds)
    warm(app, creds)
    print(f"CineRL workbench: http://{host}:{port}/ (runs: {Path(runs).resolve()})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
