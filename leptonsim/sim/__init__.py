"""Discrete-event simulation of task graphs on clusters."""

from .engine import NETWORKS, simulate
from .schedulers import SCHEDULERS, Greedy, Heft, HeftContention, Plan, Static

__all__ = ["NETWORKS", "SCHEDULERS", "Greedy", "Heft", "HeftContention", "Plan", "Static", "simulate"]
