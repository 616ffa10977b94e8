"""The `transformers` provider: a local model folder or a GGUF file, on the CPU or a GPU.

GGUF files load through transformers' GGUF loader (it needs the `gguf` package and de-quantizes
to float). That loader re-parses the whole file for config, tokenizer and weights, which takes
tens of seconds even for a 135M model, so the first load saves the converted model as an
ordinary transformers folder in CineRL's cache and later loads read that. Structured calls use
`json_decoding.SchemaDecoder`, so even a tiny model returns schema-valid JSON.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from pydantic import BaseModel

from cinerl.core.errors import UserError
from cinerl.core.settings import env_settings
from cinerl.llm.types import LLMResult

log = logging.getLogger(__name__)
_LOADED: dict[tuple[str, str], tuple] = {}
_LOCK = threading.Lock()


def cache_root() -> Path:
    """llm.cache_dir (CINERL_CACHE_DIR), else ~/.cache/cinerl."""
    root = env_settings().llm.cache_dir
    return Path(root).expanduser() if root else Path.home() / ".cache" / "cinerl"


def _gguf_folder(path: Path) -> Path:
    """Where the transformers conversion of a GGUF file lives: keyed by name, size and mtime."""
    st = path.stat()
    tag = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "gguf" / f"{path.stem}-{tag}"


def _convert_gguf(path: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a transformers folder (once) at %s", path.name, dest)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # the weights are already de-quantized floats; the GGUF marker only blocks saving them
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, dest)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)


def transformers_folder(model: str | Path) -> Path:
    """The transformers folder of a local model: a folder as it is, a .gguf file's cached
    conversion (made once, as `load_model` does); trainers load their own copy from it."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise UserError(f"{model}: no such model folder or .gguf file (models load from local paths only)")
    folder = _gguf_folder(path)
    if not (folder / "config.json").exists():
        _convert_gguf(path, folder)
    return folder


def load_model(model: str, device: str | None = None):
    """(model, tokenizer, vocab) for a folder or a .gguf file, loaded once per process."""
    path = Path(model).expanduser()
    if not path.exists():
        raise UserError(
            f"--model {model}: no such folder or .gguf file (models load from local "
            "paths only; nothing is downloaded)"
        )
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(path.resolve()), device)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from cinerl.llm.json_decoding import Vocab

        folder = path
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise UserError(f"--model {model}: a file must be a .gguf model")
            try:
                import gguf  # noqa: F401
            except ImportError:
                raise UserError(
                    "loading a .gguf model needs the `gguf` package: pip install 'cinerl[llm]'"
                ) from None
            folder = _gguf_folder(path)
            if not (folder / "config.json").exists():
                _convert_gguf(path, folder)
        try:
            tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            lm = (
                AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
                .to(device)
                .eval()
            )
        except (OSError, ValueError) as e:
            raise UserError(f"--model {model}: not a loadable causal language model ({e})") from None
        vocab = Vocab.build(tok, lm.get_output_embeddings().weight.shape[0])
        _LOADED[key] = (lm, tok, vocab)
        return _LOADED[key]


def _chat_ids(tok, messages: list[dict]) -> list[int]:
    if tok.chat_template:
        enc = tok.apply_chat_template(messages, add_generation_prompt=True)
        ids = enc["input_ids"] if hasattr(enc, "keys") else enc
        return list(ids)
    # ChatML, the format of most small instruct models, when the tokenizer carries no template
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return tok.encode(text + "<|im_start|>assistant\n", add_special_tokens=False)


class TransformersProvider:
    name = "transformers"
    base_url = None

    def __init__(self, model: str, device: str | None = None, seed: int = 0, threads: int | None = None, **_):
        self.model = str(model)
        self.device = device
        self.seed = seed
        # Decoding is batch-1 matmuls too small to gain from threads, and spinning threads lose
        # badly when the cores are shared (measured: 81 ms/token on 1 thread against 470 ms on 2
        # with other work on a 2-core machine). llm.threads overrides.
        self.threads = threads or env_settings().llm.threads
        load_model(self.model, device)  # fail now, with a clear message, not mid-run

    def complete(
        self,
        messages: list[dict],
        *,
        schema: type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
    ) -> LLMResult:
        import torch

        lm, tok, vocab = load_model(self.model, self.device)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._complete(lm, tok, vocab, messages, schema, temperature, max_tokens)
        finally:
            torch.set_num_threads(before)

    def _complete(self, lm, tok, vocab, messages, schema, temperature, max_tokens) -> LLMResult:
        import torch

        from cinerl.llm.json_decoding import SchemaDecoder

        t0 = time.perf_counter()
        ids = _chat_ids(tok, messages)
        if schema is not None:
            dec = SchemaDecoder(
                lm,
                tok,
                vocab,
                schema.model_json_schema(),
                max_tokens=max_tokens,
                temperature=temperature,
                seed=self.seed,
            )
            text = dec.run(ids)
            n_out = dec.generated
        else:
            with torch.no_grad():
                inp = torch.tensor([ids], device=lm.device)
                kw = {
                    "do_sample": temperature > 0,
                    "max_new_tokens": max_tokens,
                    "pad_token_id": tok.pad_token_id or tok.eos_token_id,
                }
                if temperature > 0:
                    torch.manual_seed(self.seed)
                    kw["temperature"] = temperature
                out = lm.generate(inp, attention_mask=torch.ones_like(inp), **kw)[0, len(ids) :]
            text = tok.decode(out, skip_special_tokens=True)
            n_out = int(out.shape[0])
        return LLMResult(
            text=text,
            provider=self.name,
            model=Path(self.model).name,
            prompt_tokens=len(ids),
            completion_tokens=n_out,
            seconds=time.perf_counter() - t0,
        )
