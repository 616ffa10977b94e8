"""Gradio's built frontend (the `/assets/...` scripts and styles, the `/static/...` fonts) served
from memory, each file compressed once.

A browser with an empty cache fetches about 75 of these files in a chain of imports, six at a
time; through Gradio's own route each one is a file stat, a threaded file read and a brotli pass
in the request, which on a busy two-core machine made the first page load twice as long as a
reload. Here a file is read and compressed on its first request only, and the hashed `/assets/`
names are sent as immutable (cached for good: a new Gradio has new names). `cinerl ui` fills the
cache before its port opens (Assets.fill), so not even the first visit after a start compresses
in a request: that visit's scripts came ~250 ms late each on a loaded machine.
"""

# no `from __future__ import annotations`: FastAPI reads the route's Request annotation
import gzip
import threading
from importlib.util import find_spec
from pathlib import Path

from cinerl.apps.web.files import resolve_in

TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".wasm": "application/wasm",
}
COMPRESSIBLE = {".js", ".css", ".svg", ".json"}
FILL_LIMIT = 512 * 1024  # larger files are plots and 3D viewers the workbench never loads


def frontend_root() -> Path | None:
    """Gradio's built frontend folder (templates/frontend), None if this Gradio has none."""
    spec = find_spec("gradio")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "templates" / "frontend"
    return root if (root / "assets").is_dir() else None


class Assets:
    """path -> (type, plain bytes, {encoding: bytes}), filled on first request."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[str, tuple[str, bytes, dict[str, bytes]]] = {}
        self.lock = threading.Lock()

    def get(self, rel: str) -> tuple[str, bytes, dict[str, bytes]] | None:
        hit = self.cache.get(rel)
        if hit is not None:
            return hit
        path = resolve_in(self.root, rel)  # nothing outside the frontend folder
        if path is None:
            return None
        data = path.read_bytes()
        packed: dict[str, bytes] = {}
        if path.suffix in COMPRESSIBLE and len(data) > 400:
            try:
                import brotli  # Gradio's own dependency (its brotli middleware)

                packed["br"] = brotli.compress(data, quality=5, mode=brotli.MODE_TEXT)
            except ImportError:
                packed["gzip"] = gzip.compress(data, compresslevel=6, mtime=0)
        entry = (TYPES.get(path.suffix, "application/octet-stream"), data, packed)
        with self.lock:
            self.cache[rel] = entry
        return entry

    def fill(self, limit: int = FILL_LIMIT) -> int:
        """Read and brotli every frontend script and style up to `limit` bytes now (about 1.5 s
        on two busy cores, once per start; gzip waits for a client without brotli); returns
        how many."""
        n = 0
        for path in sorted((self.root / "assets").iterdir()):
            if path.suffix in COMPRESSIBLE and path.stat().st_size <= limit:
                n += self.get(f"assets/{path.name}") is not None
        return n

    def response(self, rel: str, accept_encoding: str):
        from fastapi.responses import Response

        entry = self.get(rel)
        if entry is None:
            return None
        kind, data, packed = entry
        if "br" in packed and "br" not in accept_encoding and "gzip" not in packed:
            packed["gzip"] = gzip.compress(data, compresslevel=6, mtime=0)  # a client without br
        headers = {
            "Cache-Control": "public, max-age=31536000, immutable"
            if rel.startswith("assets/")
            else "public, max-age=3600",
            "Vary": "Accept-Encoding",
        }
        for enc in ("br", "gzip"):
            if enc in packed and enc in accept_encoding:
                headers["Content-Encoding"] = enc
                return Response(packed[enc], media_type=kind, headers=headers)
        return Response(data, media_type=kind, headers=headers)


def add_routes(app) -> Assets | None:
    """`/assets/...` and `/static/...` on `app`, ahead of Gradio's mount (which still serves
    whatever is not a file of its frontend folder)."""
    root = frontend_root()
    if root is None:
        return None
    assets = Assets(root)
    from fastapi import Request
    from fastapi.responses import Response

    async def serve(path: str, request: Request) -> Response:
        rel = request.url.path.lstrip("/")  # assets/... or static/..., `path` checked inside
        found = assets.response(rel, request.headers.get("accept-encoding", ""))
        return found if found is not None else Response(status_code=404)

    app.add_api_route("/assets/{path:path}", serve, methods=["GET"], include_in_schema=False)
    app.add_api_route("/static/{path:path}", serve, methods=["GET"], include_in_schema=False)
    return assets
