"""Search for the best parallel configuration (the seed's hardware-adaptive
optimisation, §7.3): a vectorised analytic estimate prunes, the simulator confirms."""

from .estimate import Estimate, Estimator
from .search import Candidate, Search, explain, search
from .space import Space, enumerate_space

__all__ = ["Candidate", "Estimate", "Estimator", "Search", "Space", "enumerate_space", "explain",
           "search"]
