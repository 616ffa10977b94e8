"""The `cinerl` command. Thin: it parses flags, builds Settings and calls the library."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cinerl.config import Settings, load_settings
from cinerl.generation.base import BackendUnavailable
from cinerl.inputs import UserError, check_out_dir, check_prompt, check_scene_count

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CineRL: one prompt to a coherent multi-scene film.")
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


def setup_logging(verbose: bool) -> None:
    """Every command's -v: INFO from our modules, else warnings only."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not m:
        raise UserError(f"--size must look like 640x360 (got {size!r})")
    return int(m.group(1)), int(m.group(2))


def settings_from(config: Path | None, **flags) -> tuple[Settings, dict[str, str]]:
    return load_settings(config, {k: v for k, v in flags.items() if v is not None})


@app.command()
def make(
    prompt: Optional[str] = typer.Argument(
        None, help="the seed prompt: who, where, what happens (optional with --from-plan)"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (film, report, state)"),
    seed: Optional[int] = typer.Option(None, help="seed for plan, render and policy sampling"),
    scenes: Optional[int] = typer.Option(None, help="force this many scenes"),
    attempts: Optional[int] = typer.Option(None, help="attempts per scene"),
    max_attempts: Optional[int] = typer.Option(None, help="most attempts a scene may get"),
    threshold: Optional[float] = typer.Option(
        None, help="consistency threshold: retry a scene while its best reward is under it"),
    size: Optional[str] = typer.Option(None, help="frame size WIDTHxHEIGHT, default 640x360"),
    fps: Optional[int] = typer.Option(None, help="frames per second, default 24"),
    backend: Optional[str] = typer.Option(None, help="video backend (previz or wan)"),
    mode: Optional[str] = typer.Option(
        None, "--mode", help="continuous (each clip from the last frame) or keyframes"),
    model_dir: Optional[Path] = typer.Option(
        None, "--model-dir", help="wan: local Wan2.2 diffusers folder (else WAN_MODEL_ROOT)"),
    variant: Optional[str] = typer.Option(None, "--variant", help="wan: ti2v-5b, t2v-a14b, i2v-a14b"),
    steps: Optional[int] = typer.Option(None, "--steps", help="wan: denoising steps"),
    offload: Optional[str] = typer.Option(None, "--offload", help="wan: auto, none, model, group"),
    vae_tiling: Optional[str] = typer.Option(None, "--vae-tiling", help="wan: auto, on, off"),
    text_encoder: Optional[str] = typer.Option(
        None, "--text-encoder", help="wan: where the text encoder runs: auto, gpu, cpu"),
    attention: Optional[str] = typer.Option(
        None, "--attention", help="wan: auto, native, cudnn, flash3"),
    compile_blocks: Optional[str] = typer.Option(
        None, "--compile", help="wan: regional compilation auto, on, off"),
    step_cache: Optional[float] = typer.Option(
        None, "--step-cache", help="wan: first-block step cache threshold (lossy, off by default)"),
    rl: Optional[str] = typer.Option(None, help="ppo or grpo"),
    policy: Optional[Path] = typer.Option(None, help="policy file (default ~/.cinerl/policy/<backend>.pt)"),
    policy_mode: Optional[str] = typer.Option(None, help="learn, frozen or random"),
    transition: Optional[str] = typer.Option(None, help="cut or crossfade"),
    prompt_opt: Optional[str] = typer.Option(
        None, "--prompt-opt", help="none or rapo: relation-graph modifiers before composition"),
    llm: Optional[str] = typer.Option(
        None, "--llm", help="story and scene prompts: offline, openai, transformers, auto"),
    llm_model: Optional[str] = typer.Option(
        None, "--model", help="LLM: model name (openai) or local folder/.gguf (transformers)"),
    llm_base_url: Optional[str] = typer.Option(
        None, "--llm-base-url", help="LLM: OpenAI-compatible server URL"),
    from_plan: Optional[Path] = typer.Option(
        None, "--from-plan", help="shoot the plan saved by `cinerl plan` in this folder"),
    weight_visual: Optional[float] = typer.Option(None, help="reward weight: visual quality"),
    weight_character: Optional[float] = typer.Option(None, help="reward weight: character consistency"),
    weight_location: Optional[float] = typer.Option(None, help="reward weight: location consistency"),
    weight_narrative: Optional[float] = typer.Option(None, help="reward weight: narrative coherence"),
    weight_temporal: Optional[float] = typer.Option(None, help="reward weight: temporal stability"),
    weight_text: Optional[float] = typer.Option(None, help="reward weight: text alignment"),
    config: Optional[Path] = typer.Option(None, help="TOML settings file"),
    fresh: bool = typer.Option(False, "--fresh", help="start over, replacing a run in --out"),
    resume: bool = typer.Option(False, "--resume", help="resume a run in --out without asking"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan, shoot, score, learn, stitch and report a film from one prompt."""
    setup_logging(verbose)
    try:
        if from_plan is not None:
            from cinerl.planning.story import load_plan

            prompt = prompt or load_plan(from_plan).seed_prompt
        elif prompt is None:
            raise UserError("give the seed PROMPT (or --from-plan DIR)")
        text = check_prompt(prompt)
        check_scene_count(scenes)
        out = check_out_dir(out)
        width, height = parse_size(size)
        settings, source = settings_from(
            config, seed=seed, scenes=scenes, attempts=attempts, max_attempts=max_attempts,
            consistency_threshold=threshold, width=width, height=height, fps=fps, backend=backend,
            rl=rl, policy_path=str(policy) if policy else None, policy_mode=policy_mode,
            transition=transition, prompt_opt=prompt_opt,
            weight_visual=weight_visual, weight_character=weight_character,
            weight_location=weight_location, weight_narrative=weight_narrative,
            weight_temporal=weight_temporal, weight_text=weight_text,
            shot_mode=mode, wan_model_dir=str(model_dir) if model_dir else None,
            wan_variant=variant, wan_steps=steps, wan_offload=offload, wan_vae_tiling=vae_tiling,
            wan_text_encoder=text_encoder, wan_attention=attention, wan_compile=compile_blocks,
            wan_step_cache=step_cache, llm=llm, llm_model=llm_model, llm_base_url=llm_base_url,
            from_plan=str(from_plan) if from_plan else None)
        if settings.backend == "wan":
            from cinerl.generation.wan import preflight

            settings = preflight(settings, size_given=source["width"] != "default",
                                 fps_given=source["fps"] != "default")
        from cinerl.director import existing_run, make_film  # heavy imports after the checks

        if existing_run(out) and not fresh and not resume and sys.stdin.isatty():
            fresh = not typer.confirm(f"{out} has a run in progress. Resume it?", default=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("planning", total=None)

            def on_plan(bible):
                bar.update(task, description=f"shooting '{bible.title}'",
                           total=len(bible.scenes) * settings.attempts)

            def on_attempt(rec):
                bar.advance(task)
                if not err.is_terminal:
                    return
                bar.console.print(f"scene {rec.scene + 1} attempt {rec.attempt + 1}: "
                                  f"reward {rec.reward.total:.3f}", highlight=False)

            result = make_film(text, out, settings, fresh=fresh, on_attempt=on_attempt,
                               on_plan=on_plan)
    except (UserError, BackendUnavailable) as e:
        fail(str(e))
    rep = result.report
    totals = [s["attempts"][s["chosen"]]["reward"]["total"] for s in rep["scenes"]]
    typer.echo(f"film:   {result.film}")
    typer.echo(f"report: {result.report_html}")
    typer.echo(f"scenes: {len(totals)}, mean chosen reward {sum(totals) / len(totals):.3f}, "
               f"policy v{rep['policy']['version_start']} -> v{rep['policy']['version_end']}")


@app.command()
def plan(
    prompt: str = typer.Argument(..., help="the seed prompt: who, where, what happens"),
    out: Path = typer.Option(..., "--out", "-o", help="plan folder (documents, report, state)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="offline, openai, transformers, auto"),
    llm_model: Optional[str] = typer.Option(
        None, "--model", help="model name (openai) or local folder/.gguf (transformers)"),
    llm_base_url: Optional[str] = typer.Option(
        None, "--llm-base-url", help="OpenAI-compatible server URL"),
    seed: Optional[int] = typer.Option(None, help="seed for the offline planner and sampling"),
    scenes: Optional[int] = typer.Option(None, help="force this many scenes"),
    config: Optional[Path] = typer.Option(None, help="TOML settings file"),
    fresh: bool = typer.Option(False, "--fresh", help="start over, replacing a plan in --out"),
    resume: bool = typer.Option(False, "--resume", help="resume a plan in --out without asking"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan only: creative document, scene prompts, critique and revision, saved in --out."""
    setup_logging(verbose)
    try:
        text = check_prompt(prompt)
        check_scene_count(scenes)
        out = check_out_dir(out)
        settings, _ = settings_from(config, seed=seed, scenes=scenes, llm=llm, llm_model=llm_model,
                                    llm_base_url=llm_base_url)
        from cinerl.planning.pipeline import existing_plan, make_plan

        if existing_plan(out) and not fresh and not resume and sys.stdin.isatty():
            fresh = not typer.confirm(f"{out} has a plan in progress. Resume it?", default=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("creative document", total=None)

            def on_step(name: str, done: int, total: int) -> None:
                bar.update(task, description=name, completed=done, total=total)

            report = make_plan(text, out, settings, fresh=fresh, on_step=on_step)
    except UserError as e:
        fail(str(e))
    typer.echo(f"plan:    {out / report['files']['creative_document']} ('{report['title']}')")
    typer.echo(f"prompts: {out / report['files']['scene_prompts']}")
    typer.echo(f"report:  {out / 'plan_report.json'} ({report['provider']} {report['model']}, "
               f"{report['calls']} calls, {report['cache_hits']} from cache, "
               f"{report['prompt_tokens'] + report['completion_tokens']} tokens)")
    for w in report["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command("config")
def show_config(
    config: Optional[Path] = typer.Option(None, help="TOML settings file"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print the effective settings and where each one came from."""
    try:
        settings, source = load_settings(config)
    except UserError as e:
        fail(str(e))
    values = settings.model_dump(mode="json")
    if as_json:
        typer.echo(json.dumps({k: {"value": v, "source": source[k]} for k, v in values.items()},
                              indent=2))
        return
    table = Table(title="CineRL settings")
    for col in ("setting", "value", "source"):
        table.add_column(col)
    for k, v in values.items():
        table.add_row(k, str(v), source[k])
    Console().print(table)


@app.command()
def smoke(
    out: Path = typer.Option(Path("smoke_report.json"), "--out", "-o", help="JSON report path"),
    seed: int = typer.Option(0),
) -> None:
    """Check planner, policy update and run store quickly; exit 1 if any check fails."""
    from cinerl.smoke import run_smoke

    try:
        check_out_dir(out.parent if out.parent != Path("") else Path("."))
    except UserError as e:
        fail(str(e))
    report = run_smoke(out, seed=seed)
    for c in report["checks"]:
        typer.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<14} {c['seconds']:.2f}s")
    typer.echo(f"report: {out}")
    raise typer.Exit(0 if report["ok"] else 1)


@app.command()
def actors(
    portrait: Path = typer.Argument(..., help="the actor's portrait (JPEG, PNG, WebP, ...)"),
    actor_type: str = typer.Option(..., "--type", help="human, creature, robotic, anthropomorphic "
                                   "or mythical"),
    sex: Optional[str] = typer.Option(None, "--sex", help="male or female (humans)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the images, payloads and grid"),
    batch_size: int = typer.Option(5, "--batch-size", help="images rendered per batch"),
    storage: Optional[str] = typer.Option(None, "--storage", help="also upload to s3://bucket/prefix"),
    width: int = typer.Option(1024, "--width", help="image width; height is 9/16 of it"),
    seed: int = typer.Option(0, "--seed"),
    backend: str = typer.Option("previz", "--backend", help="previz (portrait-conditioned, CPU) "
                                "or diffusers (an image-conditioned pipeline, e.g. FLUX Kontext)"),
    model_path: Optional[Path] = typer.Option(None, "--model-path", help="local diffusers folder"),
    steps: int = typer.Option(28, "--steps", help="diffusion steps (diffusers)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Make an actor's 17-image training set (7 photo, 6 b/w, 4 colour) from one portrait."""
    from cinerl.references.actors import generate_actor_dataset
    from cinerl.references.prompts import TOTAL

    setup_logging(verbose)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=not err.is_terminal) as bar:
            task = bar.add_task("actor images", total=TOTAL)
            result = generate_actor_dataset(
                portrait, actor_type, out, actor_sex=sex, batch_size=batch_size, storage=storage,
                width=width, seed=seed, backend=backend,
                model_path=str(model_path) if model_path else None, steps=steps,
                on_image=lambda p, ok: bar.advance(task))
    except (UserError, BackendUnavailable) as e:
        fail(str(e))
    for location in result.image_locations:
        typer.echo(location)
    typer.echo(f"generated {result.generated}/{result.target} images; grid: {result.grid}; "
               f"result: {result.result_path}")
    for f in result.failures:
        err.print(f"image {f['index']} ({f['style']}) failed: {f['error']}", highlight=False)
    for f in result.upload_failures:
        err.print(f"upload failed, kept locally: {f['file']}", highlight=False)
    raise typer.Exit(0 if result.generated == result.target and not result.upload_failures else 1)


# RAPO++ (issue 6): `cinerl rapo PROMPT | build | export` and `cinerl sspo PROMPT`
from cinerl.prompting.rapo.commands import rapo_app, sspo  # noqa: E402

app.add_typer(rapo_app, name="rapo")
app.command("sspo")(sspo)


@app.command()
def score(
    video: Path = typer.Argument(..., help="an MP4 (or any video PyAV can read)"),
    prompt: Optional[str] = typer.Option(None, help="the prompt the video was made from"),
    bible: Optional[Path] = typer.Option(None, help="story bible JSON (DIR/story/bible.json)"),
    scene: Optional[int] = typer.Option(None, help="scene index in the bible (default 0)"),
    config: Optional[Path] = typer.Option(None, help="TOML settings file (weights, model paths)"),
    as_json: bool = typer.Option(False, "--json", help="print the breakdown as JSON"),
) -> None:
    """Score one video with the reward suite: every component, its value and status."""
    from cinerl.rewards.score_video import detail, score_video

    try:
        settings, _ = load_settings(config)
        from cinerl.rewards import RewardConfig

        breakdown, used = score_video(video, prompt, bible, scene, weights=settings.reward_weights(),
                                      config=RewardConfig.from_settings(settings))
    except UserError as e:
        fail(str(e))
    if as_json:
        typer.echo(breakdown.model_dump_json(indent=2))
        return
    out = Console()
    table = Table(title=f"{video.name}: reward {breakdown.total:.3f}", caption="; ".join(used))
    for col in ("component", "group", "status", "value", "detail"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green", "unavailable": "yellow", "not_applicable": "dim"}
    for c in breakdown.components.values():
        table.add_row(c.name, c.group, f"[{colours.get(c.status, 'white')}]{c.status}[/]",
                      "" if c.value is None else f"{c.value:.3f}", detail(c))
    out.print(table)
    groups = Table(title="groups")
    for col in ("group", "score", "weight"):
        groups.add_column(col)
    for g, v in breakdown.groups.items():
        w = breakdown.weights.get(g)
        groups.add_row(g, "-" if v is None else f"{v:.3f}", "dropped" if w is None else f"{w:.3f}")
    out.print(groups)
    out.print(f"total {breakdown.total:.3f} in {breakdown.seconds:.2f} s", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
