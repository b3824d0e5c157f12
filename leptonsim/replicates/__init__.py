"""Monte-Carlo replicates of a noisy scenario: `leptonsim run FILE --samples N`.

    stats.py    median, p5/p95, a bootstrap interval of the mean, replicates needed
    run.py      N seeded samples through a sweep executor (process pool or Dask), each
                a `Replicate` row; their summary and report
    files.py    samples.csv, samples.json, samples.png (the makespans' histogram with
                the seed's T_p and the work/span bound marked), as one set
"""

from .run import Replicate, Replicates, replicates
from .stats import Summary, needed, summarise

__all__ = ["Replicate", "Replicates", "Summary", "needed", "replicates", "summarise"]
