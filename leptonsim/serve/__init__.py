"""LLM inference serving: requests, batching schedulers, a paged KV cache, and their
latencies, on the cost model of the training steps (docs/serving.md)."""
