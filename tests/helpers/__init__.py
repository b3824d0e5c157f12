"""Helpers shared by the test modules (no tests here: pytest collects only test_*.py)."""
