/**
 * The prefill→decode hand-off of the real engines (spec.engine.kind vllm / sglang), as their upstream proxies do it.
 * The gateway speaks them (gateway/src/dispatch/engine-handoff.ts); the operator and the load adapter report what it
 * needs (the engine kind and SGLang's bootstrap port, InstanceLoadFields). Both go through each engine's OpenAI
 * `POST /v1/completions`; the documented request shapes, with their source URLs, are in
 * gateway/src/dispatch/fixtures/engine-pd-requests.json.
 *
 * vLLM, NixlConnector (tests/v1/kv_connector/nixl_integration/toy_proxy_server.py): one request to a prefill
 * instance with `kv_transfer_params` = VLLM_PREFILL_KV_TRANSFER_PARAMS, `max_tokens: 1`, `stream: false`; its
 * answer's `kv_transfer_params` (where the KV is: remote_engine_id, remote_block_ids, remote_host, remote_port, …)
 * then go, unchanged, with the original request to a decode instance, whose answer is the client's. The prefill's
 * own token is never relayed: the decode instance produces the whole completion.
 *
 * SGLang (python/sglang/srt/disaggregation/mini_lb.py; sgl-router's PD mode): the same request, with
 * `bootstrap_host` (the prefill instance's host), `bootstrap_port` (its disaggregation bootstrap server) and a
 * random `bootstrap_room` (an integer in [0, 2^63 - 1]) added, goes to the prefill and the decode instance at once;
 * the decode instance's answer is the client's.
 */

/** `kv_transfer_params` of the request to a vLLM prefill instance (toy_proxy_server.py send_request_to_service). */
export const VLLM_PREFILL_KV_TRANSFER_PARAMS = {
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
} as const;

/** SGLang's `--disaggregation-bootstrap-port` default (server_args.py). */
export const SGLANG_DEFAULT_BOOTSTRAP_PORT = 8998;

/** The largest bootstrap room (mini_lb.py `random.randint(0, 2**63 - 1)`). */
export const SGLANG_BOOTSTRAP_ROOM_MAX = 2n ** 63n - 1n;
