"""`cinerl batch`: many films from a file of prompts, one run folder each, and a summary
(`DIR/batch.json`) with each film's status, mean chosen reward and time.

Films are independent, so each is a job on the executor: one after the other in this process
(local), or several at once on Ray actors. Every film starts from the same policy: the shared
policy file as the batch first found it (copied to `DIR/policy_start.pt`), and learns into its
own file (`DIR/policies/NN.pt`), so a film is the film a separate `cinerl make --policy` of that
copy makes, whatever the order or the parallelism. The batch does not write the shared file.

Resumable: a film whose run is done is not shot again; an unfinished one resumes in its folder
(the director's own resume); batch.json is written by this process alone, after every film.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import as_completed
from pathlib import Path

from cinerl.core.errors import Unavailable, UserError
from cinerl.core.inputs import check_out_dir, check_prompt, slug
from cinerl.core.media import atomic_write_text
from cinerl.core.schema import FilmReport
from cinerl.core.settings import Settings
from cinerl.executor import Job, make_executor

log = logging.getLogger(__name__)

FILM_JOB = "cinerl.runtime.batch:film_job"
SUMMARY = "batch.json"


def read_prompts(path: Path) -> list[str]:
    """One seed prompt a line; blank lines and lines starting with '#' are skipped."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"prompts file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"prompts file {path} is a folder: give a text file, one prompt a line") from None
    except UnicodeDecodeError as e:
        raise UserError(f"prompts file {path} is not UTF-8 text (byte {e.start})") from None
    prompts = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                prompts.append(check_prompt(line))
            except UserError as e:
                raise UserError(f"{path}:{n}: {e}") from None
    if not prompts:
        raise UserError(f"prompts file {path} holds no prompt (one a line; '#' starts a comment)")
    return prompts


def film_name(index: int, prompt: str) -> str:
    return f"{index + 1:02d}_{slug(prompt, 'film')[:32]}"


def film_job(prompt: str, out: str, settings: Settings) -> dict:
    """One film of a batch, on any worker: make (or resume) it and sum it up."""
    from cinerl.runtime.director import make_film

    t0 = time.perf_counter()
    report = make_film(prompt, Path(out), settings).report
    return {"status": "done", "seconds": time.perf_counter() - t0, **summary_of(report)}


def summary_of(report: FilmReport) -> dict:
    totals = [a.reward.total for a in (s.chosen_attempt for s in report.scenes) if a is not None]
    return {
        "title": report.title,
        "scenes": len(report.scenes),
        "reward": round(sum(totals) / len(totals), 6) if totals else None,
    }


def finished(folder: Path) -> FilmReport | None:
    """The film's report when its run is done (report.json written after the run's last step)."""
    try:
        return FilmReport.read(folder) if (folder / "film.mp4").is_file() else None
    except Exception:  # noqa: BLE001 - a missing or damaged report: the film is shot (resumed) again
        return None


def write_summary(out_dir: Path, rows: list[dict]) -> Path:
    return atomic_write_text(out_dir / SUMMARY, json.dumps({"films": rows}, indent=2))


def run_batch(
    prompts_file: Path,
    out_dir: Path,
    settings: Settings,
    on_film: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Make every film of the file (resuming what an earlier batch left); return the rows."""
    prompts = read_prompts(prompts_file)
    out_dir = check_out_dir(out_dir)
    shared = settings.resolved_policy_path()
    start = out_dir / "policy_start.pt"
    if not start.exists() and shared.is_file():
        shutil.copyfile(shared, start)  # the policy every film of the batch starts from
    (out_dir / "policies").mkdir(exist_ok=True)
    rows: list[dict] = []
    jobs: list[tuple[int, Job]] = []
    for i, prompt in enumerate(prompts):
        name = film_name(i, prompt)
        folder = out_dir / name
        row = {"film": i + 1, "folder": name, "prompt": prompt, "status": "pending", "reward": None}
        rows.append(row)
        report = finished(folder)
        if report is not None and report.seed_prompt == prompt:
            row.update(status="done", seconds=0.0, earlier=True, **summary_of(report))
            continue
        policy = out_dir / "policies" / f"{i + 1:02d}.pt"
        if not policy.exists() and start.exists() and not (folder / "state.db").exists():
            shutil.copyfile(start, policy)
        film_settings = settings.updated(**{"policy.path": str(policy), "executor.kind": "local"})
        jobs.append(
            (i, Job(FILM_JOB, {"prompt": prompt, "out": str(folder), "settings": film_settings}, key=name))
        )
    write_summary(out_dir, rows)
    for row in rows:
        if row["status"] == "done" and on_film:
            on_film(row)
    if not jobs:
        return rows
    with make_executor(settings.executor) as executor:
        started = time.perf_counter()
        for i, future in _shoot(executor, jobs, rows, out_dir):
            row = rows[i]
            try:
                row.update(future.result().value)
            except (UserError, Unavailable) as e:
                row.update(status="failed", error=str(e), seconds=time.perf_counter() - started)
            except Exception as e:  # noqa: BLE001 - one film's crash is its row, the others go on
                log.exception("film %s failed", row["folder"])
                row.update(
                    status="failed", error=f"{type(e).__name__}: {e}", seconds=time.perf_counter() - started
                )
            write_summary(out_dir, rows)
            if on_film:
                on_film(row)
    return rows


def _shoot(executor, jobs: list[tuple[int, Job]], rows: list[dict], out_dir: Path):
    """(film index, future) as films finish: one at a time in this process (so batch.json
    follows each film), all at once on a pool."""
    if executor.name == "local":
        for i, job in jobs:
            rows[i]["status"] = "running"
            write_summary(out_dir, rows)
            yield i, executor.submit(job)
        return
    futures = {executor.submit(job): i for i, job in jobs}
    for i, _ in jobs:
        rows[i]["status"] = "running"
    write_summary(out_dir, rows)
    for future in as_completed(futures):
        yield futures[future], future
