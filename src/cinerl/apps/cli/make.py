"""`cinerl make`: plan, shoot, score, learn, stitch and report a film from one prompt."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from cinerl.apps.cli.common import (
    config_option,
    err,
    executor_option,
    fail,
    llm_base_url_option,
    llm_model_option,
    llm_option,
    parse_size,
    progress,
    ray_address_option,
    set_option,
    settings_from,
    setup_logging,
    workers_option,
)
from cinerl.core.errors import Unavailable, UserError
from cinerl.core.inputs import check_out_dir, check_prompt, check_scene_count


def log_line(line: str) -> None:
    """One line per stage, scene and take when stderr is a file, a pipe or CI (no bar there)."""
    print(line, file=sys.stderr, flush=True)


def join_gpus(settings) -> bool:
    """`--gpus N`: outside torchrun, run this command again as N torchrun processes and end
    with their exit code; inside, join them. True on rank 0, which goes on to run the film;
    the other ranks render what rank 0 announces (wan/parallel.py) and return False."""
    from cinerl.generation.wan import launch, parallel

    if not launch.launched():
        raise typer.Exit(launch.relaunch(settings.wan.gpus))
    world = parallel.world_from_env()
    if world is None or world.size != settings.wan.gpus:
        raise UserError(
            f"--gpus {settings.wan.gpus} under torchrun with {world.size if world else 1} processes"
        )
    parallel.init(world)
    if world.leader:
        return True
    from cinerl.generation.wan.backend import shared_backend

    parallel.serve(shared_backend(settings.wan))
    return False


def make(
    ctx: typer.Context,
    prompt: Optional[str] = typer.Argument(
        None, help="the seed prompt: who, where, what happens (optional with --from-plan)"
    ),
    out: str = typer.Option(..., "--out", "-o", help="run folder (film, report, state)"),
    run__seed: Optional[int] = typer.Option(None, "--seed", help="seed for plan, render and policy"),
    plan__scenes: Optional[int] = typer.Option(None, "--scenes", help="force this many scenes"),
    run__attempts: Optional[int] = typer.Option(None, "--attempts", help="attempts per scene"),
    run__max_attempts: Optional[int] = typer.Option(
        None, "--max-attempts", help="most attempts a scene may get"
    ),
    run__consistency_threshold: Optional[float] = typer.Option(
        None, "--threshold", help="retry a scene while its best reward is under this"
    ),
    size: Optional[str] = typer.Option(None, help="frame size WIDTHxHEIGHT, default 640x360"),
    run__fps: Optional[int] = typer.Option(None, "--fps", help="frames per second, default 24"),
    run__backend: Optional[str] = typer.Option(None, "--backend", help="video backend (previz, wan)"),
    run__shot_mode: Optional[str] = typer.Option(
        None, "--mode", help="continuous (each clip from the last frame) or keyframes"
    ),
    executor__kind: Optional[str] = executor_option(),
    executor__address: Optional[str] = ray_address_option(),
    executor__workers: Optional[int] = workers_option(),
    run__parallel_takes: Optional[bool] = typer.Option(
        None, "--parallel-takes", help="shoot a scene's takes at once, all from the scene's first state"
    ),
    run__parallel_scenes: Optional[bool] = typer.Option(
        None,
        "--parallel-scenes",
        help="--mode keyframes: shoot every scene's takes at once, all from the film's first policy",
    ),
    wan__model_dir: Optional[Path] = typer.Option(
        None, "--model-dir", help="wan: local Wan2.2 diffusers folder (else WAN_MODEL_ROOT)"
    ),
    wan__variant: Optional[str] = typer.Option(None, "--variant", help="wan: ti2v-5b, t2v-a14b, i2v-a14b"),
    wan__steps: Optional[int] = typer.Option(None, "--steps", help="wan: denoising steps"),
    wan__offload: Optional[str] = typer.Option(None, "--offload", help="wan: auto, none, model, group"),
    wan__vae_tiling: Optional[str] = typer.Option(None, "--vae-tiling", help="wan: auto, on, off"),
    wan__text_encoder: Optional[str] = typer.Option(
        None, "--text-encoder", help="wan: where the text encoder runs: auto, gpu, cpu"
    ),
    wan__attention: Optional[str] = typer.Option(
        None, "--attention", help="wan: auto, fa3, native, cudnn, flash3"
    ),
    wan__compile: Optional[str] = typer.Option(
        None, "--compile", help="wan: regional compilation auto, on, off"
    ),
    wan__step_cache: Optional[float] = typer.Option(
        None, "--step-cache", help="wan: first-block step cache threshold (lossy, off by default)"
    ),
    wan__fast: Optional[bool] = typer.Option(
        None,
        "--fast",
        help="wan: lossy fast mode (step cache, FP8 attention, bf16 decode; off by default, marked lossy)",
    ),
    wan__fp8_attention: Optional[str] = typer.Option(
        None, "--fp8-attention", help="wan: FP8 self-attention, lossy: auto (with --fast), on, off"
    ),
    wan__decode_dtype: Optional[str] = typer.Option(
        None, "--decode-dtype", help="wan: VAE decode precision: auto (bf16 with --fast on CUDA), fp32, bf16"
    ),
    wan__save_latents: Optional[bool] = typer.Option(
        None, "--save-latents", help="wan: keep each take's latents (training data for cinerl train)"
    ),
    wan__lora: Optional[str] = typer.Option(
        None,
        "--lora",
        help="wan: a video LoRA folder from `cinerl train video-dpo`, DIR[:scale] (several: A;B:0.8)",
    ),
    wan__gpus: Optional[int] = typer.Option(
        None, "--gpus", help="wan: GPUs for one clip, one torchrun process each (docs/multi_gpu.md)"
    ),
    wan__parallel: Optional[str] = typer.Option(
        None, "--parallel", help="wan: with --gpus N: ulysses, ring or cfg (auto: ulysses)"
    ),
    cast: Optional[list[str]] = typer.Option(
        None,
        "--cast",
        help="NAME=PORTRAIT[,LORA_DIR]: a real person plays the character NAME (repeatable; docs/cast.md)",
    ),
    cast_scale: float = typer.Option(1.0, "--cast-scale", help="wan: strength of the --cast character LoRA"),
    policy__rl: Optional[str] = typer.Option(None, "--rl", help="ppo or grpo"),
    policy__path: Optional[Path] = typer.Option(
        None, "--policy", help="policy file (default ~/.cinerl/policy/<backend>.pt)"
    ),
    policy__mode: Optional[str] = typer.Option(
        None, "--policy-mode", help="learn, frozen, random, or template (the recipe for every take)"
    ),
    policy__recipe: Optional[str] = typer.Option(
        None,
        "--recipe",
        help="factor=value,... over the default recipe: the prior's centre, template's action",
    ),
    assembly__transition: Optional[str] = typer.Option(None, "--transition", help="cut or crossfade"),
    audio__music: Optional[str] = typer.Option(
        None, "--music", help="music bed: generated (default), none, or an audio FILE looped to the film"
    ),
    audio__voice: Optional[str] = typer.Option(
        None, "--voice", help="cast (each line in its first character's voice) or a narrator's (en-gb, ...)"
    ),
    audio__tts: Optional[str] = typer.Option(None, "--tts", help="speech engine: espeak or piper"),
    audio__tts_model: Optional[str] = typer.Option(None, "--tts-model", help="piper: the VOICE.onnx file"),
    assembly__burn_subtitles: Optional[bool] = typer.Option(
        None, "--burn-subtitles", help="draw the subtitles into the film's frames"
    ),
    assembly__title_card: Optional[bool] = typer.Option(
        None, "--title-card", help="open on the title and logline"
    ),
    assembly__end_card: Optional[bool] = typer.Option(None, "--end-card", help="close on the cast"),
    plan__prompt_opt: Optional[str] = typer.Option(
        None, "--prompt-opt", help="none or rapo: relation-graph modifiers before composition"
    ),
    llm__provider: Optional[str] = llm_option(),
    llm__model: Optional[str] = llm_model_option(),
    llm__base_url: Optional[str] = llm_base_url_option(),
    plan__from_plan: Optional[Path] = typer.Option(
        None, "--from-plan", help="shoot the plan saved by `cinerl plan` in this folder"
    ),
    rewards__weights__visual_quality: Optional[float] = typer.Option(
        None, "--weight-visual", help="reward weight: visual quality"
    ),
    rewards__weights__character_consistency: Optional[float] = typer.Option(
        None, "--weight-character", help="reward weight: character consistency"
    ),
    rewards__weights__location_consistency: Optional[float] = typer.Option(
        None, "--weight-location", help="reward weight: location consistency"
    ),
    rewards__weights__narrative_coherence: Optional[float] = typer.Option(
        None, "--weight-narrative", help="reward weight: narrative coherence"
    ),
    rewards__weights__temporal_stability: Optional[float] = typer.Option(
        None, "--weight-temporal", help="reward weight: temporal stability"
    ),
    rewards__weights__text_alignment: Optional[float] = typer.Option(
        None, "--weight-text", help="reward weight: text alignment"
    ),
    rewards__weights__scene_plan: Optional[float] = typer.Option(
        None, "--weight-scene", help="reward weight: the take against the scene plan (light, motion, cast)"
    ),
    sets: Optional[list[str]] = set_option(),
    config: Optional[Path] = config_option(),
    fresh: bool = typer.Option(False, "--fresh", help="start over, replacing a run in --out"),
    resume: bool = typer.Option(False, "--resume", help="resume a run in --out without asking"),
    plan_only: bool = typer.Option(
        False, "--plan-only", help="stop after the plan, references and keyframes: `cinerl approve` shoots it"
    ),
    approve: bool = typer.Option(
        False, "--approve", help="shoot a plan made with --plan-only (edits included)"
    ),
    budget: Optional[float] = typer.Option(
        None, "--budget", help="seconds the takes may spend: retries stop when the rest would not fit"
    ),
    self_contained: bool = typer.Option(
        False, "--self-contained", help="report.html embeds the film, takes and stills (one file)"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Plan, shoot, score, learn, stitch and report a film from one prompt."""
    setup_logging(verbose)
    try:
        if plan__from_plan is not None:
            from cinerl.planning.bible import load_plan

            prompt = prompt or load_plan(plan__from_plan).seed_prompt
        elif prompt is None:
            raise UserError("give the seed PROMPT (or --from-plan DIR)")
        text = check_prompt(prompt)
        check_scene_count(plan__scenes)
        width, height = parse_size(size)
        from cinerl.training.character.cast import parse_cast

        # a malformed value or a missing portrait: one line, before anything is written
        cast_loras = [c.lora for c in parse_cast(cast) if c.lora]
        settings, source = settings_from(
            config,
            ctx.params,
            sets,
            run__width=width,
            run__height=height,
            run__cast=list(cast) if cast else None,
        )
        if cast_loras and settings.run.backend == "wan":  # the character LoRAs, checked by preflight
            from cinerl.training.character.cast import with_cast_loras

            # beside --lora, one adapter each (diffusers' multiple adapters)
            settings = settings.updated(wan__lora=with_cast_loras(settings.wan.lora, cast_loras, cast_scale))
        from cinerl.generation.registry import preflight

        settings = preflight(settings, source)  # the backend's checks, before anything is written
        if settings.run.backend == "wan" and settings.wan.gpus > 1 and not join_gpus(settings):
            return  # --gpus N: the torchrun processes ran the film, or this one followed rank 0
        from cinerl.assembly.audio.preflight import check_audio

        check_audio(settings)  # a missing or unreadable --music FILE: one line, before any shooting
        from cinerl.executor import preflight as check_executor

        check_executor(settings.executor)  # --executor ray without Ray: one line, before any shooting
        # only now: bad settings leave no empty --out behind (a str: typer's Path("") is ".")
        out = check_out_dir(out)
        if budget is not None and budget <= 0:
            raise UserError(f"--budget must be a number of seconds above 0 (got {budget})")
        from cinerl.runtime.director import existing_run  # heavy imports after the checks
        from cinerl.runtime.edits import Hooks
        from cinerl.runtime.edits import make as make_run

        if existing_run(out) and not fresh and not resume and sys.stdin.isatty():
            fresh = not typer.confirm(f"{out} has a run in progress. Resume it?", default=True)
        r = settings.run
        per_scene = r.max_attempts if r.consistency_threshold is not None else r.attempts
        with progress("planning") as (bar, task):

            def on_plan(bible):
                bar.update(task, description=f"shooting '{bible.title}'", total=len(bible.scenes) * per_scene)

            def on_attempt(rec):
                bar.advance(task)
                line = (
                    f"scene {rec.scene + 1} take {rec.attempt + 1}: reward {rec.reward.total:.3f}"
                    f" ({sum(rec.timings.values()):.1f} s)"
                )
                if err.is_terminal:
                    bar.console.print(line, highlight=False)
                else:
                    log_line(line)

            def on_scene(scene, takes):
                # a threshold scene that stopped early: the bar's total shrinks to the real takes
                if takes < per_scene:
                    bar.update(task, total=bar.tasks[0].total - (per_scene - takes))

            def on_estimate(lines):  # the first lines of every make: clips, frames, steps, seconds
                for line in lines:
                    typer.echo(line)

            result = make_run(
                text,
                out,
                settings,
                fresh=fresh,
                plan_only=plan_only,
                approve=approve,
                budget_s=budget,
                self_contained=self_contained,
                hooks=Hooks(
                    on_attempt=on_attempt,
                    on_plan=on_plan,
                    on_event=None if err.is_terminal else log_line,
                    on_scene=on_scene,
                    on_estimate=on_estimate,
                ),
            )
    except (UserError, Unavailable) as e:
        fail(str(e))
    finally:
        from cinerl.generation.wan.parallel import finish

        finish()  # --gpus N, rank 0: the other ranks stop waiting for clips
    if result is None:  # --plan-only
        typer.echo(f"plan:   {out}/story/bible.json (awaiting approval)")
        typer.echo(f"edit it if you like, then: cinerl approve {out}")
        return
    rep = result.report
    totals = [a.reward.total for a in (s.chosen_attempt for s in rep.scenes) if a is not None]
    mean = sum(totals) / len(totals) if totals else 0.0
    typer.echo(f"film:   {result.film}")
    typer.echo(f"report: {result.report_html}")
    typer.echo(
        f"scenes: {len(totals)}, mean chosen reward {mean:.3f}, "
        f"policy v{rep.policy.version_start} -> v{rep.policy.version_end}"
    )
