"""JSON-schema constrained decoding for local causal language models.

A small model asked for JSON drifts into prose, forgets a bracket or invents a key. This decoder
walks the schema instead: structural text (braces, keys, commas, quotes) is forced into the
sequence, and at each value the model only chooses among tokens that keep the output valid:
string tokens without quotes, backslashes or control characters and within maxLength; digits that
can still reach a number in [minimum, maximum]; one of the enum values (walked as a token trie);
whether an array goes on, within minItems/maxItems. The result parses and validates against the
schema by construction. Forced text is fed in one forward pass, so only the chosen tokens cost a
step each. The idea is the interleaved forcing/constraining of guidance-style templating and of
grammar-constrained decoding (Willard & Louf 2023, "Efficient Guided Generation for LLMs"); the
code is our own and handles the subset of JSON Schema that pydantic emits for plain models:
objects with required properties, $ref/$defs, strings (maxLength/minLength/enum), integers and
numbers as integers (minimum/maximum), booleans and arrays (minItems/maxItems).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

# A token repeated inside one value loses this much (CTRL's repetition penalty, Keskar et al.
# 2019): without it a tiny model greedily repeats one word until maxLength.
REPETITION_PENALTY = 1.3
DEFAULT_MAX_STRING = 200


class UnsupportedSchema(ValueError):
    pass


@dataclass
class Vocab:
    """What each token id means for JSON: its text, and which tokens may sit inside a string."""

    texts: list[str]
    string_ok: torch.Tensor  # bool (V,)
    word_start: torch.Tensor  # bool (V,): string_ok and not starting with a blank
    lengths: torch.Tensor  # int (V,) characters of each token's text
    digits: dict[int, str]
    quote: int
    comma: int
    close_bracket: int
    specials: set[int] = field(default_factory=set)

    @classmethod
    def build(cls, tokenizer, size: int) -> "Vocab":
        specials = set(tokenizer.all_special_ids)
        texts = [tokenizer.decode([i]) if i < len(tokenizer) else "" for i in range(size)]
        ok = torch.zeros(size, dtype=torch.bool)
        lengths = torch.zeros(size, dtype=torch.long)
        digits: dict[int, str] = {}
        for i, t in enumerate(texts):
            lengths[i] = len(t)
            if i in specials or not t or "\ufffd" in t:
                continue
            if t.isdigit() and t.isascii():
                digits[i] = t
            if '"' in t or "\\" in t or any(ord(c) < 32 or ord(c) == 127 for c in t):
                continue
            ok[i] = True

        def single(ch: str) -> int:
            ids = tokenizer.encode(ch, add_special_tokens=False)
            if len(ids) != 1:
                raise UnsupportedSchema(f"the tokenizer has no single token for {ch!r}")
            return ids[0]

        word = ok & torch.tensor([not t[:1].isspace() for t in texts])
        return cls(texts, ok, word, lengths, digits, single('"'), single(","), single("]"), specials)


def _can_reach(prefix: str, lo: int, hi: int) -> bool:
    """Whether some integer in [lo, hi] (both >= 0) is written with this digit prefix."""
    if len(prefix) > 1 and prefix[0] == "0":
        return False
    p = int(prefix)
    for extra in range(0, len(str(hi)) - len(prefix) + 1):
        a, b = p * 10**extra, p * 10**extra + 10**extra - 1
        if prefix == "0" and extra > 0:
            break
        if a <= hi and b >= lo:
            return True
    return False


class SchemaDecoder:
    """Generate one JSON value for `schema` from a prompt, token by token, always valid."""

    def __init__(
        self,
        model,
        tokenizer,
        vocab: Vocab,
        schema: dict,
        *,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        seed: int = 0,
    ):
        self.model, self.tok, self.vocab = model, tokenizer, vocab
        self.defs = schema.get("$defs", {})
        self.schema = schema
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.gen = torch.Generator().manual_seed(seed)
        self.past = None
        self.pending: list[int] = []
        self.generated = 0
        self.out: list[str] = []
        self._enc: dict[str, list[int]] = {}

    # token plumbing --------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        if text not in self._enc:
            self._enc[text] = self.tok.encode(text, add_special_tokens=False)
        return self._enc[text]

    def force(self, text: str) -> None:
        ids = self._encode(text)
        self.pending.extend(ids)
        self.generated += len(ids)
        self.out.append(text)

    @torch.no_grad()
    def _logits(self) -> torch.Tensor:
        ids = torch.tensor([self.pending], dtype=torch.long)
        res = self.model(input_ids=ids, past_key_values=self.past, use_cache=True)
        self.past = res.past_key_values
        self.pending = []
        return res.logits[0, -1].float()

    def pick(self, allowed: torch.Tensor, seen: set[int] | None = None) -> int:
        """The model's choice among the allowed token ids (greedy at temperature 0)."""
        logits = self._logits()
        n = logits.shape[0]
        mask = torch.full((n,), float("-inf"))
        mask[allowed[allowed < n]] = 0.0
        logits = logits + mask
        if seen:
            idx = torch.tensor(sorted(i for i in seen if i < n), dtype=torch.long)
            vals = logits[idx]
            logits[idx] = torch.where(vals > 0, vals / REPETITION_PENALTY, vals * REPETITION_PENALTY)
        if self.temperature > 0:
            probs = torch.softmax(logits / self.temperature, dim=-1)
            return int(torch.multinomial(probs, 1, generator=self.gen))
        return int(torch.argmax(logits))

    def take(self, token: int) -> None:
        self.pending.append(token)
        self.generated += 1
        self.out.append(self.vocab.texts[token])

    @property
    def over_budget(self) -> bool:
        return self.generated >= self.max_tokens

    # schema walk -----------------------------------------------------------------------
    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            name = node["$ref"].split("/")[-1]
            node = self.defs[name]
        if "allOf" in node and len(node["allOf"]) == 1:
            return self.resolve({**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}})
        return node

    def value(self, node: dict) -> None:
        node = self.resolve(node)
        if "enum" in node or "const" in node:
            return self.enum(node.get("enum") or [node["const"]])
        kind = node.get("type")
        if kind == "object":
            return self.obj(node)
        if kind == "array":
            return self.array(node)
        if kind == "string":
            return self.string(node)
        if kind in ("integer", "number"):
            return self.integer(node)
        if kind == "boolean":
            return self.enum([True, False])
        raise UnsupportedSchema(f"constrained decoding does not handle {node}")

    def obj(self, node: dict) -> None:
        props = node.get("properties", {})
        self.force("{")
        for i, (key, sub) in enumerate(props.items()):
            self.force(("" if i == 0 else ", ") + json.dumps(key) + ": ")
            self.value(sub)
        self.force("}")

    def array(self, node: dict) -> None:
        lo, hi = node.get("minItems", 0), node.get("maxItems", 8)
        item = node.get("items", {})
        self.force("[")
        n = 0
        while n < hi:
            if n >= lo:
                # the model says whether the list goes on: ',' (or the first item) or ']'
                go = self.vocab.comma if n else self._encode(self._start(item))[0]
                choice = self.pick(torch.tensor([go, self.vocab.close_bracket]))
                if choice == self.vocab.close_bracket or self.over_budget:
                    break
            if n:
                self.force(", ")
            self.value(item)
            n += 1
        self.force("]")

    def _start(self, node: dict) -> str:
        node = self.resolve(node)
        if "enum" in node or node.get("type") == "string":
            return '"'
        return {"object": "{", "array": "["}.get(node.get("type"), "0")

    def enum(self, options: list) -> None:
        """Walk a token trie of the options' JSON texts; the model picks at each branch."""
        seqs = [self._encode(json.dumps(o)) for o in options]
        prefix: list[int] = []
        while True:
            live = [s for s in seqs if s[: len(prefix)] == prefix]
            done = [s for s in live if len(s) == len(prefix)]
            nxt = sorted({s[len(prefix)] for s in live if len(s) > len(prefix)})
            if done and (not nxt or self.over_budget):
                return
            if len(nxt) == 1 and not done:
                tok = nxt[0]
                self.pending.append(tok)
                self.generated += 1
                self.out.append(self.vocab.texts[tok])
            else:
                # a finished option competes with its continuations through the next structural
                # character, which is never a word token: treat "stop here" as the comma token
                allowed = nxt + ([self.vocab.comma] if done else [])
                tok = self.pick(torch.tensor(allowed))
                if tok == self.vocab.comma and done:
                    return
                self.take(tok)
            prefix.append(tok)

    def string(self, node: dict) -> None:
        lo = node.get("minLength", 0)
        hi = node.get("maxLength", DEFAULT_MAX_STRING)
        self.force('"')
        length, seen = 0, set()
        while True:
            room = hi - length
            if room <= 0 or (self.over_budget and length >= lo):
                break
            # no leading blank: a value starts with a word
            base = self.vocab.word_start if length == 0 else self.vocab.string_ok
            allowed = base & (self.vocab.lengths <= room)
            ids = torch.nonzero(allowed).flatten()
            if length >= lo and length > 0:
                ids = torch.cat([ids, torch.tensor([self.vocab.quote])])
            tok = self.pick(ids, seen)
            if tok == self.vocab.quote:
                break
            self.take(tok)
            seen.add(tok)
            length += len(self.vocab.texts[tok])
        self.force('"')

    def integer(self, node: dict) -> None:
        lo = int(node.get("minimum", node.get("exclusiveMinimum", -1) + 1))
        hi = int(node.get("maximum", node.get("exclusiveMaximum", 10**6 + 1) - 1))
        if lo < 0:
            raise UnsupportedSchema("constrained integers must have minimum >= 0")
        text = ""
        stop = self.vocab.comma
        while True:
            allowed = [i for i, d in self.vocab.digits.items() if _can_reach(text + d, lo, hi)]
            can_stop = bool(text) and lo <= int(text) <= hi
            if not allowed or (can_stop and self.over_budget):
                break
            tok = self.pick(torch.tensor(allowed + ([stop] if can_stop else [])))
            if tok == stop:
                break
            self.take(tok)
            text += self.vocab.digits[tok]
        if not text:  # unreachable for a sane range; keep the output valid anyway
            self.force(str(lo))

    def run(self, prompt_ids: list[int]) -> str:
        self.pending = list(prompt_ids)
        self.value(self.schema)
        return "".join(self.out)
