"""leptonsim: simulate, cost and validate deep-learning workloads."""

__version__ = "0.1.0"
