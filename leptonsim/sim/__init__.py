"""Discrete-event simulation of task graphs on clusters."""

from .engine import simulate
from .schedulers import SCHEDULERS, Greedy, Heft, Plan, Static

__all__ = ["SCHEDULERS", "Greedy", "Heft", "Plan", "Static", "simulate"]
