"""The instance HTTP API (docs/engine-api.md, common/src/engine-api.ts): /health, /v1/completions, the P/D
hand-off (/gpufleet/v1/prefill, /gpufleet/v1/decode) and the KV pull (GET/DELETE /gpufleet/v1/kv/{id}).

Standard library only (ThreadingHTTPServer): one thread per connection, each waiting on its request's event queue
while the engine thread produces tokens. Streams use chunked transfer encoding; a client that goes away is noticed
on the next write and its request is aborted (the contract's cancellation: the connection closing).
"""

from __future__ import annotations

import contextlib
import json
import queue
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..engine.scheduler import RejectedError
from . import kv_wire, tokenizer
from .agent_link import log
from .engine_loop import EngineLoop, RequestStream, TokenEvent

KV_PREFIX = "/gpufleet/v1/kv/"
TOKEN_TIMEOUT_S = 120.0  # longest wait for one token before the request is failed (a stuck engine)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    instance_id: str  # the worker id
    role: str
    model: str
    engine_url: str


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


def error_body(code: str, message: str, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if code in ("invalid_request", "model_not_found") else code
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


def _field(body: dict, name: str, kind: type, *, minimum: int | None = None, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if ok and kind is str and value == "":
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        want = (
            f"{kind.__name__}"
            + (f" >= {minimum}" if minimum is not None else "")
            + (" (non-empty)" if kind is str else "")
        )
        raise HttpError(400, "invalid_request", f"{name}: expected {want}, got {value!r}", name)
    return value


class InstanceServer:
    """Binds the HTTP API to one EngineLoop. `port` 0 picks a free port (`self.port` holds the bound one)."""

    def __init__(self, loop: EngineLoop, info: InstanceInfo, host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop, self.info = loop, info
        self.vocab = loop.model.vocab_size
        server = self

        class Handler(_Handler):
            instance = server

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    instance: InstanceServer

    def log_message(self, format: str, *args: Any) -> None:  # the worker logs requests itself, as JSON
        return

    # --- plumbing --------------------------------------------------------------------------------------------
    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        rid = self.headers.get("x-request-id")
        if rid:
            self.send_header("x-request-id", rid)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        n = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"null")
        except ValueError as err:
            raise HttpError(400, "invalid_request", f"body is not JSON: {err}") from err
        if not isinstance(body, dict):
            raise HttpError(400, "invalid_request", "body must be a JSON object")
        return body

    def _guarded(self, fn) -> None:
        try:
            fn()
        except HttpError as err:
            self._json(err.status, error_body(err.code, err.message, err.param))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/health":
            self._guarded(self._health)
        elif path.startswith(KV_PREFIX):
            self._guarded(lambda: self._kv_get(urllib.parse.unquote(path[len(KV_PREFIX) :])))
        else:
            self._json(404, error_body("not_found", f"no route GET {path}"))

    def do_DELETE(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(KV_PREFIX):
            self._guarded(lambda: self._kv_delete(urllib.parse.unquote(path[len(KV_PREFIX) :])))
        else:
            self._json(404, error_body("not_found", f"no route DELETE {path}"))

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        routes = {
            "/v1/completions": self._completions,
            "/gpufleet/v1/prefill": self._prefill,
            "/gpufleet/v1/decode": self._decode,
        }
        handler = routes.get(path)
        if handler is None:
            self._json(404, error_body("not_found", f"no route POST {path}"))
            return
        self._guarded(handler)

    # --- endpoints ---------------------------------------------------------------------------------------------
    def _health(self) -> None:
        info, loop = self.instance.info, self.instance.loop
        status = "draining" if loop.draining else "ok"
        body = {"status": status, "role": info.role, "model": info.model, "instance": info.instance_id}
        self._json(503 if loop.draining else 200, body)

    def _admissible(self, body: dict, role: str) -> None:
        info = self.instance.info
        if info.role != role:
            raise HttpError(400, "wrong_role", f"this instance's role is {info.role}; this endpoint needs {role}")
        if self.instance.loop.draining:
            raise HttpError(503, "draining", f"instance {info.instance_id} is draining and takes no new requests")
        model = _field(body, "model", str)
        if model != info.model:
            raise HttpError(
                404, "model_not_found", f"model {model!r} is not served here (serves {info.model!r})", "model"
            )

    def _priority(self) -> str:
        p = (self.headers.get("x-gpufleet-priority") or "normal").strip().lower()
        return "high" if p == "high" else "normal"

    def _add(self, request_id: str, prompt_ids: list[int], max_tokens: int) -> RequestStream:
        try:
            return self.instance.loop.add_request(request_id, prompt_ids, max_tokens, self._priority())
        except RejectedError as err:
            raise HttpError(400, "request_rejected", str(err)) from err

    def _completions(self) -> None:
        body = self._body()
        self._admissible(body, "colocated")
        prompt = _field(body, "prompt", str)
        max_tokens = _field(body, "max_tokens", int, minimum=1)
        stream = bool(body.get("stream", False))
        rid = self.headers.get("x-request-id") or f"cmpl-{uuid.uuid4().hex[:16]}"
        prompt_ids = tokenizer.encode(prompt, self.instance.vocab)
        req = self._add(rid, prompt_ids, max_tokens)
        self._answer(req, rid, len(prompt_ids), stream, already=0)

    def _prefill(self) -> None:
        body = self._body()
        self._admissible(body, "prefill")
        rid = _field(body, "request_id", str)
        prompt = _field(body, "prompt", str)
        max_tokens = _field(body, "max_tokens", int, minimum=1)
        prompt_ids = tokenizer.encode(prompt, self.instance.vocab)
        req = self._add(rid, prompt_ids, max_tokens)
        first: int | None = None
        finish: str | None = None
        while True:
            ev = self._next(req, rid)
            if ev.kind == "token":
                first = ev.token_id
            elif ev.kind == "finished":
                finish = ev.finish_reason
                break
            elif ev.kind == "held":
                break
        assert first is not None, "the engine holds or finishes a prefill only after its first token"
        info = self.instance.info
        held = self.instance.loop.held_handle(rid)
        blocks = held.header.shape[2] if held else 0
        nbytes = held.header.total_bytes if held else 0
        block_size = self.instance.loop.engine.config.block_size
        kv = {"source_url": info.engine_url, "source_instance": info.instance_id, "request_id": rid}
        kv |= {"blocks": blocks, "bytes": nbytes, "block_size_tokens": block_size}
        answer = {
            "request_id": rid,
            "prompt_tokens": len(prompt_ids),
            "first_token": {"text": tokenizer.decode_token(first)},
        }
        self._json(200, answer | {"finish_reason": finish, "kv": kv})

    def _decode(self) -> None:
        body = self._body()
        self._admissible(body, "decode")
        rid = _field(body, "request_id", str)
        prompt_tokens = _field(body, "prompt_tokens", int, minimum=1)
        _field(body, "max_tokens", int, minimum=1)
        kv = body.get("kv")
        if not isinstance(kv, dict):
            raise HttpError(400, "invalid_request", "kv: expected the prefill instance's KV handle", "kv")
        source = _field(kv, "source_url", str).rstrip("/")
        kv_id = _field(kv, "request_id", str)
        want = _field(kv, "bytes", int, minimum=0)
        url = f"{source}{KV_PREFIX}{urllib.parse.quote(kv_id, safe='')}"
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        except urllib.error.HTTPError as err:
            if err.code in (404, 410):
                raise HttpError(410, "kv_gone", f"KV of {kv_id} is no longer at {source} ({err.code})") from err
            raise HttpError(502, "kv_pull_failed", f"pulling KV of {kv_id} from {source}: HTTP {err.code}") from err
        except OSError as err:
            raise HttpError(502, "kv_pull_failed", f"pulling KV of {kv_id} from {source}: {err}") from err
        if len(data) != want:
            raise HttpError(502, "kv_pull_failed", f"KV of {kv_id}: got {len(data)} bytes, the handle says {want}")
        with contextlib.suppress(OSError):  # the source frees it on its TTL anyway
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()
        t1 = time.perf_counter()
        try:
            req = self.instance.loop.import_kv(data, self._priority())
        except (kv_wire.KvWireError, RejectedError, ValueError) as err:
            raise HttpError(400, "kv_import_failed", f"importing KV of {kv_id}: {err}") from err
        pull_ms, import_ms = (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000
        log("kv_imported", request_id=kv_id, bytes=len(data), pull_ms=round(pull_ms, 2), import_ms=round(import_ms, 2))
        self._answer(req, rid, prompt_tokens, bool(body.get("stream", False)), already=req.start_output_tokens)

    def _kv_get(self, request_id: str) -> None:
        data = self.instance.loop.export_held(request_id)
        if data is None:
            raise HttpError(404, "kv_not_found", f"no KV held for request {request_id}")
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _kv_delete(self, request_id: str) -> None:
        if not self.instance.loop.release_held(request_id):
            raise HttpError(404, "kv_not_found", f"no KV held for request {request_id}")
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    # --- answering a generation --------------------------------------------------------------------------------
    def _next(self, req: RequestStream, rid: str) -> TokenEvent:
        try:
            ev = req.events.get(timeout=TOKEN_TIMEOUT_S)
        except queue.Empty as err:
            self.instance.loop.abort(rid, "no token within the timeout")
            raise HttpError(500, "engine_timeout", f"request {rid}: no token within {TOKEN_TIMEOUT_S} s") from err
        if ev.kind == "aborted":
            raise HttpError(503, "aborted", f"request {rid} was aborted: {ev.reason}")
        return ev

    def _chunk(self, rid: str, text: str, finish: str | None, usage: dict | None = None) -> dict:
        choice = {"index": 0, "text": text, "finish_reason": finish}
        out = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": self.instance.info.model}
        return out | {"choices": [choice], "usage": usage}

    def _answer(self, req: RequestStream, rid: str, prompt_tokens: int, stream: bool, already: int) -> None:
        if not stream:
            texts: list[str] = []
            while (ev := self._next(req, rid)).kind == "token":
                texts.append(tokenizer.decode_token(ev.token_id))
            usage = _usage(prompt_tokens, already + len(texts))
            self._json(200, self._chunk(rid, "".join(texts), ev.finish_reason or "length", usage))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", rid)
        self.end_headers()
        produced = 0
        try:
            while True:
                try:
                    ev = self._next(req, rid)
                except HttpError as err:
                    self._sse({"error": error_body(err.code, err.message)["error"]})
                    self._end_chunks()
                    return
                if ev.kind == "token":
                    produced += 1
                    self._sse(self._chunk(rid, tokenizer.decode_token(ev.token_id), None))
                    continue
                self._sse(self._chunk(rid, "", ev.finish_reason or "length", _usage(prompt_tokens, already + produced)))
                self._write_chunk(b"data: [DONE]\n\n")
                self._end_chunks()
                return
        except (BrokenPipeError, ConnectionResetError):
            self.instance.loop.abort(rid, "client closed the connection")
            raise

    def _sse(self, payload: Any) -> None:
        self._write_chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
