"""The validation scatter: task kinds grouped into the step's phases, a colour each."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex

from leptonsim.validate.figures import PHASES, phase_colours, phase_of, scatter

KINDS = ["conv2d", "conv2d.bwd", "dense", "dense.bwd", "relu", "relu.bwd", "batchnorm",
         "batchnorm.bwd", "attention", "attention.bwd", "layernorm", "layernorm.bwd", "gelu",
         "gelu.bwd", "embedding", "embedding.bwd", "softmax_xent", "softmax_xent.bwd",
         "ring_allreduce", "ring_allgather", "tp_allgather+reducescatter", "ring_exchange",
         "offload", "optimizer", "task"]


def test_kinds_fall_into_the_step_phases() -> None:
    assert {k: phase_of(k) for k in ("conv2d", "dense.bwd", "ring_allreduce",
                                      "tp_allgather+reducescatter", "optimizer", "task")} == {
        "conv2d": "forward", "dense.bwd": "backward", "ring_allreduce": "communication",
        "tp_allgather+reducescatter": "communication", "optimizer": "optimizer",
        "task": "other"}
    assert {phase_of(k) for k in KINDS} == set(PHASES)


def test_25_kinds_are_five_distinct_colours() -> None:
    n = len(KINDS)
    t = np.linspace(1e-4, 1e-2, n)
    fig = scatter(t, t * 1.05, KINDS, "25 kinds")
    ax = fig.axes[0]
    faces = [to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections
             if isinstance(c, PathCollection)]  # the points, not the ±10 % band
    assert len(faces) == len(PHASES) == len(set(faces))  # one per phase, none repeated
    assert len(set(map(to_hex, phase_colours().values()))) == len(PHASES)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "backward (9 tasks, 9 kinds)" in labels
