"""The worker process: engine loop, instance HTTP API (docs/engine-api.md) and the link to the node agent."""
