"""Parallel training strategies: pipeline partition and schedules, memory, step graphs."""
