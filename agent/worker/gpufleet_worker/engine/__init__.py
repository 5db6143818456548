"""Pure engine bookkeeping: request state, KV block accounting and scheduling. No tensors, no device."""
