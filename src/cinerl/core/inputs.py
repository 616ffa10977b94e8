"""Checks on what a user hands us, so bad input ends in one clear message before anything is written."""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from pathlib import Path

from cinerl.core.errors import UserError

MAX_PROMPT_CHARS = 20_000


def check_prompt(prompt: str | bytes) -> str:
    """Return the prompt stripped, or raise UserError saying what is wrong with it."""
    if isinstance(prompt, bytes):
        try:
            prompt = prompt.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"the prompt is not valid UTF-8 (byte {e.start})") from None
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in prompt):
        # argv bytes that are not UTF-8 arrive as lone surrogates (PEP 383)
        raise UserError("the prompt is not valid UTF-8")
    text = prompt.strip()
    if not text:
        raise UserError(
            "the prompt is empty: describe the film you want, e.g. "
            "'a lighthouse keeper rescues a sailor in a storm'"
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise UserError(f"the prompt has {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    bad = [ch for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t\r"]
    if bad:
        raise UserError(f"the prompt contains control characters ({', '.join(repr(c) for c in bad[:3])})")
    return text


def check_scene_count(n: int | None, limit: int = 24) -> int | None:
    if n is None:
        return None
    if n < 1 or n > limit:
        raise UserError(f"--scenes must be between 1 and {limit} (got {n})")
    return n


def check_out_dir(path: str | Path) -> Path:
    """Create the output folder if needed and prove it is writable with a probe file that is
    removed at once; on failure undo any folder this call made and raise UserError. An empty
    name is refused: as a Path it would mean the current folder."""
    if not str(path).strip():
        raise UserError("--out is empty: name the run folder")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path} is a file, not a folder")
    first_missing = path
    while not first_missing.parent.exists() and first_missing.parent != first_missing:
        first_missing = first_missing.parent
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".cinerl-probe-"):
            pass
    except OSError as e:
        if made and first_missing.exists():
            shutil.rmtree(first_missing, ignore_errors=True)
        raise UserError(f"--out {path} is not writable ({e.strerror or e})") from None
    return path


def slug(name: str, fallback: str = "item") -> str:
    """A filesystem-safe id from any name: ASCII letters, digits and '_' only, never a path."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-zA-Z0-9]+", "_", text).strip("_").lower()[:40]
    return text or fallback
