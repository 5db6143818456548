"""The instance HTTP API over a real socket, on the numpy engine: completions (streamed and not), the P/D hand-off
between two instances (KV pulled over HTTP), cancellation, draining, and errors with their codes."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gpufleet_worker.config import EngineConfig, ModelConfig
from gpufleet_worker.engine.llm_engine import LLMEngine
from gpufleet_worker.engine.sequence import SamplingParams
from gpufleet_worker.model.numpy_model import NumpyModel, NumpyRunner
from gpufleet_worker.model.weights import random_weights
from gpufleet_worker.serve import kv_wire, tokenizer
from gpufleet_worker.serve.engine_loop import EngineLoop
from gpufleet_worker.serve.http_api import InstanceInfo, InstanceServer

TINY = ModelConfig("tiny", layers=2, hidden_size=64, heads=4, kv_heads=2, intermediate_size=128, vocab_size=512)
PROMPT = "The quick brown fox jumps over the lazy dog, twice."


def engine(role: str, num_blocks: int = 64) -> LLMEngine:
    cfg = EngineConfig(num_blocks=num_blocks, block_size=4, max_num_batched_tokens=8, role=role)
    return LLMEngine(cfg, NumpyRunner(NumpyModel(TINY, random_weights(TINY, 7), num_blocks, 4)))


@pytest.fixture
def instances() -> Iterator[dict[str, InstanceServer]]:
    servers: dict[str, InstanceServer] = {}
    for role in ("colocated", "prefill", "decode"):
        loop = EngineLoop(engine(role, 1024 if role == "colocated" else 64), TINY, kv_ttl_s=30)
        loop.start()
        s = InstanceServer(loop, InstanceInfo(f"w-{role}", role, "tiny", ""))
        s.info = InstanceInfo(f"w-{role}", role, "tiny", f"http://127.0.0.1:{s.port}")
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers[role] = s
    yield servers
    for s in servers.values():
        s.shutdown()
        s.loop.stop()


def post(server: InstanceServer, path: str, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"{server.info.engine_url}{path}",
        json.dumps(body).encode(),
        {"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def sse_events(raw: bytes) -> list:
    out = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: "):
            out.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return out


def expected_text(max_tokens: int) -> tuple[str, list[int]]:
    """The same request straight through an engine (no HTTP): the tokens the API must stream."""
    e = engine("colocated")
    seq = e.add_request("ref", tokenizer.encode(PROMPT, TINY.vocab_size), SamplingParams(max_tokens=max_tokens))
    e.run_until_idle()
    out = seq.token_ids[seq.num_prompt_tokens :]
    return "".join(tokenizer.decode_token(t) for t in out), out


def test_completion_not_streamed_equals_the_engine_run(instances) -> None:
    status, raw = post(instances["colocated"], "/v1/completions", {"model": "tiny", "prompt": PROMPT, "max_tokens": 6})
    body = json.loads(raw)
    assert status == 200
    assert body["choices"][0]["text"] == expected_text(6)[0]
    assert body["choices"][0]["finish_reason"] == "length"
    prompt_tokens = len(tokenizer.encode(PROMPT, TINY.vocab_size))
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 6, "total_tokens": prompt_tokens + 6}


def test_streamed_completion_sends_one_event_per_token_then_usage_and_done(instances) -> None:
    body = {"model": "tiny", "prompt": PROMPT, "max_tokens": 5, "stream": True}
    status, raw = post(instances["colocated"], "/v1/completions", body, {"x-request-id": "req-s"})
    events = sse_events(raw)
    assert status == 200 and events[-1] == "[DONE]"
    tokens = [e["choices"][0]["text"] for e in events[:-2]]
    assert "".join(tokens) == expected_text(5)[0] and len(tokens) == 5
    assert events[-2]["choices"][0]["finish_reason"] == "length" and events[-2]["usage"]["completion_tokens"] == 5
    assert all(e["id"] == "req-s" for e in events[:-1])


def test_prefill_then_decode_on_another_instance_gives_the_colocated_tokens(instances) -> None:
    p, d = instances["prefill"], instances["decode"]
    status, raw = post(
        p, "/gpufleet/v1/prefill", {"request_id": "pd-1", "model": "tiny", "prompt": PROMPT, "max_tokens": 7}
    )
    assert status == 200, raw
    pre = json.loads(raw)
    want_text, want_ids = expected_text(7)
    assert pre["first_token"]["text"] == tokenizer.decode_token(want_ids[0]) and pre["finish_reason"] is None
    kv = pre["kv"]
    assert kv["source_url"] == p.info.engine_url and kv["blocks"] == -(-(pre["prompt_tokens"] + 1 - 1) // 4)
    assert p.loop.load.held_kv_blocks == kv["blocks"]
    body = {"request_id": "pd-1", "model": "tiny", "prompt_tokens": pre["prompt_tokens"], "max_tokens": 7}
    status, raw = post(d, "/gpufleet/v1/decode", body | {"first_token": pre["first_token"], "kv": kv, "stream": True})
    events = sse_events(raw)
    assert status == 200 and events[-1] == "[DONE]"
    texts = [e["choices"][0]["text"] for e in events[:-2]]
    assert pre["first_token"]["text"] + "".join(texts) == want_text  # bit-exact KV: the same greedy tokens
    assert events[-2]["usage"]["completion_tokens"] == 7
    # the decode side deleted the KV at the source, which freed its blocks
    status, _ = post(d, "/gpufleet/v1/decode", body | {"first_token": pre["first_token"], "kv": kv})
    assert status == 410
    assert p.loop.load.held_kv_blocks == 0 and p.loop.load.kv_blocks_used == 0


def test_kv_bytes_match_the_handle_and_decode_back(instances) -> None:
    p = instances["prefill"]
    _, raw = post(p, "/gpufleet/v1/prefill", {"request_id": "kv-1", "model": "tiny", "prompt": PROMPT, "max_tokens": 3})
    kv = json.loads(raw)["kv"]
    with urllib.request.urlopen(f"{p.info.engine_url}/gpufleet/v1/kv/kv-1", timeout=10) as r:
        data = r.read()
    assert len(data) == kv["bytes"]
    header, _ = kv_wire.decode(data)
    assert header.shape == [2, 2, kv["blocks"], 4, 2, 16] and header.dtype == "float32"
    assert header.num_computed_tokens == header.num_prompt_tokens == json.loads(raw)["prompt_tokens"]
    with pytest.raises(kv_wire.KvWireError, match="payload has"):
        kv_wire.decode(data[:-4])
    req = urllib.request.Request(f"{p.info.engine_url}/gpufleet/v1/kv/kv-1", method="DELETE")
    assert urllib.request.urlopen(req, timeout=10).status == 204


def test_bad_requests_get_openai_errors_with_codes(instances) -> None:
    c = instances["colocated"]
    status, raw = post(c, "/v1/completions", {"model": "tiny", "prompt": "", "max_tokens": 3})
    assert status == 400 and json.loads(raw)["error"]["param"] == "prompt"
    status, raw = post(c, "/v1/completions", {"model": "other", "prompt": "x", "max_tokens": 3})
    assert status == 404 and json.loads(raw)["error"]["code"] == "model_not_found"
    status, raw = post(c, "/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": 10_000})
    assert status == 400 and "exceed the cache" in json.loads(raw)["error"]["message"]
    status, raw = post(instances["decode"], "/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": 3})
    assert status == 400 and json.loads(raw)["error"]["code"] == "wrong_role"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{c.info.engine_url}/gpufleet/v1/kv/nope", timeout=5)
    assert err.value.code == 404


def test_draining_instance_answers_503_on_health_and_new_requests(instances) -> None:
    c = instances["colocated"]
    c.loop.draining = True
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{c.info.engine_url}/health", timeout=5)
    assert err.value.code == 503 and json.loads(err.value.read())["status"] == "draining"
    status, raw = post(c, "/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": 3})
    assert status == 503 and json.loads(raw)["error"]["code"] == "draining"


def test_client_closing_the_stream_aborts_the_request_and_frees_its_blocks(instances) -> None:
    c = instances["colocated"]
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    body = json.dumps({"model": "tiny", "prompt": PROMPT, "max_tokens": 3000, "stream": True})
    conn.request("POST", "/v1/completions", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.read1(64)  # the stream has started
    conn.sock.close()
    conn.close()
    for _ in range(200):
        load = c.loop.load
        if load.running_requests == 0 and load.kv_blocks_used == 0:
            break
        threading.Event().wait(0.05)
    assert (c.loop.load.running_requests, c.loop.load.kv_blocks_used) == (0, 0)
    assert c.loop.steps < 3000  # stopped well before max_tokens
    assert c.loop.aborted_total == 1
