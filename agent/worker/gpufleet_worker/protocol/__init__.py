"""The worker protocol (agent/proto/gpufleet/worker/v1/worker.proto): generated stubs and the client wrapper."""
