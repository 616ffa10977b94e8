"""The `cinerl rapo ...` and `cinerl sspo` commands. Thin: parse, call the library, print.

`rapo` is a group whose default command is `query`: `cinerl rapo "a prompt"` runs
`cinerl rapo query "a prompt"`, while `cinerl rapo build` and `cinerl rapo export` are the other
subcommands. A prompt that is literally "build" or "export" goes through `cinerl rapo query build`.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from cinerl.apps.cli.common import err, fail, parse_size, progress, setup_logging
from cinerl.core.errors import Unavailable, UserError
from cinerl.core.inputs import check_prompt

DEFAULT_COMMAND = "query"


class DefaultQueryGroup(TyperGroup):
    """Routes `rapo PROMPT ...` to `rapo query PROMPT ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


rapo_app = typer.Typer(
    cls=DefaultQueryGroup,
    add_completion=False,
    no_args_is_help=True,
    help="RAPO retrieval: `cinerl rapo PROMPT`, `cinerl rapo build`, `cinerl rapo export`.",
)


@rapo_app.command("query")
def query(
    prompt: str = typer.Argument(..., help="the prompt to optimise"),
    places: int = typer.Option(3, "--places", min=1, help="top-k places (RAPO's place_num)"),
    verbs: int = typer.Option(5, "--verbs", min=0, help="verb neighbours per place"),
    scenes: int = typer.Option(5, "--scenes", min=0, help="scene neighbours per place"),
    threshold: Optional[float] = typer.Option(None, help="similarity threshold (default 0.25)"),
    csv: Optional[list[Path]] = typer.Option(
        None, "--csv", help="caption CSV(s) instead of the starter graph (+ grown captions)"
    ),
    rapo_dir: Optional[Path] = typer.Option(None, help="graph cache folder (~/.cinerl/rapo)"),
    llm: str = typer.Option(
        "auto", help="LLM for merge/refactor/rewrite: auto, openai, transformers or offline (rule-based)"
    ),
    llm_model: Optional[str] = typer.Option(
        None, "--model", help="LLM model: a local folder or .gguf (transformers), a model name (openai)"
    ),
    llm_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible LLM server URL"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Print the retrieved modifiers and the optimised prompt."""
    from cinerl.prompting.rapo import llm_bridge
    from cinerl.prompting.rapo.graph import load_graph
    from cinerl.prompting.rapo.optimise import optimise_prompt
    from cinerl.prompting.rapo.retrieval import THRESHOLD, Retriever

    setup_logging(verbose)
    try:
        text = check_prompt(prompt)
        graph = load_graph(csv or None, rapo_dir=rapo_dir)
        retriever = Retriever(
            graph,
            place_num=places,
            verb_num=verbs,
            scene_num=scenes,
            threshold=THRESHOLD if threshold is None else threshold,
        )
        provider = llm_bridge.resolve_llm(llm, llm_model, llm_base_url)
        result = optimise_prompt(text, retriever, llm=provider)
    except (UserError, Unavailable) as e:
        fail(str(e))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    out = Console()
    table = Table(title=f"retrieved for: {text}")
    for col in ("kind", "similarity", "modifier", "via place", "kept"):
        table.add_column(col)
    kept = {(m.kind, m.text) for m in result.retrieval.kept}
    used = {(m.kind, m.text) for m in result.added}
    shown = result.retrieval.kept + result.retrieval.dropped[:5]
    for m in sorted(shown, key=lambda m: -m.similarity):
        mark = "merged" if (m.kind, m.text) in used else ("kept" if (m.kind, m.text) in kept else "-")
        table.add_row(m.kind, f"{m.similarity:.3f}", m.text, m.place, mark)
    out.print(table)
    hidden = len(result.retrieval.dropped) - 5
    if hidden > 0:
        out.print(f"({hidden} more under the threshold {retriever.threshold} or redundant)")
    for step in result.steps[1:]:
        out.print(f"{step.step}: {step.method}", highlight=False)
    typer.echo(f"optimised: {result.optimised}")


@rapo_app.command("build")
def build(
    csv: Optional[list[Path]] = typer.Option(
        None, "--csv", help="caption CSV(s) (default: the starter CSV plus grown captions)"
    ),
    from_runs: Optional[list[Path]] = typer.Option(
        None, "--from-runs", help="grow the graph first from these `cinerl make` run folders"
    ),
    rapo_dir: Optional[Path] = typer.Option(None, help="graph cache folder (~/.cinerl/rapo)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Rebuild the relation graph (and its embedding cache), optionally growing it from runs."""
    from cinerl.prompting.rapo.graph import grown_csv_path, load_graph
    from cinerl.training.datasets.growth import grow_from_runs

    setup_logging(verbose)
    try:
        if from_runs:
            g = grow_from_runs(list(from_runs), grown_csv_path(rapo_dir))
            typer.echo(
                f"grew: {g.rows_added} new captions from {len(g.runs)} run(s) "
                f"({g.attempts_seen} attempts, top quartile kept); {g.rows_total} in {g.csv}"
            )
        with (
            err.status("embedding phrases and linking the graph", spinner="dots")
            if err.is_terminal
            else nullcontext()
        ):
            graph = load_graph(csv or None, rapo_dir=rapo_dir, rebuild=True)
    except (UserError, Unavailable) as e:
        fail(str(e))
    s = graph.stats()
    typer.echo(
        f"graph: {s['places']} places, {s['verbs']} verbs, {s['scenes']} scenes, "
        f"{s['edges']} edges from {s['valid_rows']}/{s['rows']} captions in "
        f"{s['build_seconds']:.2f}s"
    )
    typer.echo(f"sources: {', '.join(s['sources'])}")


@rapo_app.command("export")
def export(
    sources: list[Path] = typer.Option(
        ..., "--from", help="SSPO chain folders and `make` run folders (searched recursively)"
    ),
    out: Path = typer.Option(..., "--out", "-o", help="folder for sft.jsonl, dpo.jsonl"),
    min_margin: float = typer.Option(0.02, help="least reward gap for a DPO pair"),
) -> None:
    """Write SFT prompt/completion and DPO chosen/rejected JSONL from SSPO chains and runs."""
    from cinerl.training.datasets.prompt_pairs import export_feedback

    try:
        s = export_feedback(list(sources), out, min_margin=min_margin)
    except UserError as e:
        fail(str(e))
    typer.echo(f"sft: {s.sft_records} records -> {s.sft}")
    typer.echo(f"dpo: {s.dpo_records} records -> {s.dpo}")
    typer.echo(f"from {len(s.chains)} SSPO chain(s) and {len(s.runs)} run(s)")


def sspo(
    prompt: str = typer.Argument(..., help="the prompt to refine"),
    out: Path = typer.Option(..., "--out", "-o", help="chain folder (clips, sspo_log.csv)"),
    physics_law: str = typer.Option("", "--physics-law", help="the physical rule to enforce"),
    iterations: int = typer.Option(5, "--iterations", min=1, max=50),
    backend: str = typer.Option("previz", "--backend", help="video backend"),
    seed: int = typer.Option(0, "--seed"),
    size: str = typer.Option("640x360", "--size", help="frame size WIDTHxHEIGHT"),
    fps: int = typer.Option(24, "--fps", min=1, max=120),
    seconds: float = typer.Option(5.0, "--seconds", help="clip length"),
    llm: str = typer.Option(
        "auto",
        help="LLM for the physics check and rewrite: auto, openai, transformers or offline (rule-based)",
    ),
    llm_model: Optional[str] = typer.Option(
        None, "--model", help="LLM model: a local folder or .gguf (transformers), a model name (openai)"
    ),
    llm_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible LLM server URL"),
    vlm_base_url: Optional[str] = typer.Option(
        None, help="OpenAI-compatible vision endpoint (else rewards.vlm_base_url)"
    ),
    vlm_model: Optional[str] = typer.Option(None, help="vision model name (else rewards.vlm_model)"),
    fresh: bool = typer.Option(False, "--fresh", help="start the chain over"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """SSPO: generate, measure motion and alignment, rewrite; keep the best prompt; resumable."""
    from cinerl.prompting.rapo import llm_bridge
    from cinerl.training.sspo.loop import SSPOConfig, run_sspo
    from cinerl.training.sspo.vision import VisionJudge

    setup_logging(verbose)
    try:
        width, height = parse_size(size)
        try:
            config = SSPOConfig(
                prompt=prompt,
                physics_law=physics_law,
                iterations=iterations,
                backend=backend,
                seed=seed,
                width=width,
                height=height,
                fps=fps,
                seconds=seconds,
            )
        except ValueError as e:
            raise UserError(f"invalid SSPO settings: {e}") from None
        with progress("SSPO", total=iterations) as (bar, task):

            def on_iteration(rec):
                bar.update(
                    task,
                    completed=rec.iteration,
                    description=f"iteration {rec.iteration}: reward {rec.reward:.3f}",
                )

            provider = llm_bridge.resolve_llm(llm, llm_model, llm_base_url)
            result = run_sspo(
                config,
                out,
                fresh=fresh,
                backend=backend,
                llm=provider,
                judge=VisionJudge(vlm_base_url, vlm_model),
                on_iteration=on_iteration,
            )
    except (UserError, Unavailable) as e:
        fail(str(e))
    if result.resumed_from:
        typer.echo(f"resumed after iteration {result.resumed_from}")
    for it in result.iterations:
        al = f"{it.alignment:.0f}/5" if it.alignment is not None else "n/a"
        typer.echo(
            f"iter {it.iteration}: reward {it.reward:.3f} (physics {it.physics:.3f}, "
            f"alignment {al}) rewrite: {it.rewrite_method}"
        )
    typer.echo(f"best: iteration {result.best_iteration}, reward {result.best_reward:.3f}")
    typer.echo(f"prompt: {result.best_prompt}")
    typer.echo(f"log: {result.log_csv}")
    if result.iterations and result.iterations[0].alignment_status != "ok":
        err.print(f"alignment {result.iterations[0].alignment_status}", highlight=False)
