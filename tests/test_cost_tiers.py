"""The tiers of the validation cost model (leptonsim.cost.kinds): a layer profiled
at the step's micro-batch costs what it measured there; the interpolated tier never
looks at that size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leptonsim.cost.calibrated import Profile
from leptonsim.cost.kinds import TIERS, KernelCalibration, KindCost, KindFit, interpolate
from leptonsim.graph import GraphBuilder

PROFILE = Profile(peak_flops=1e11, memory_bandwidth=1.5e10, overhead_s=5e-6,
                  link_latency_s=3e-5, link_bandwidth=4e9,
                  efficiency_curve=((1e3, 0.01), (3.4e7, 1.0)), machine={"cpu": "test"})
KEY = "F|float32|Dense(units=8)@(4,)"

sizes = st.lists(st.integers(1, 256), min_size=2, max_size=8, unique=True)
seconds = st.floats(1e-6, 1.0)


def _one_task() -> GraphBuilder:
    b = GraphBuilder()
    b.task("layer", flops=1e6, nbytes=1e4, pin=0, kind="dense")
    return b


def _kernel_seconds(curve: list[tuple[float, float]], batch: int, tier: str) -> float:
    cal = KernelCalibration({"dense": KindFit(1e-4, 1.0, 1.0, 0.0, 1)},
                            curves={KEY: tuple(sorted(curve))})
    cost = KindCost(PROFILE, cal, [KEY], batch, tier)
    return float(cost.kernel_seconds(_one_task().build())[0])


@given(sizes, st.data())
def test_profiled_tier_charges_the_time_measured_at_the_micro_batch(batches, data):
    times = data.draw(st.lists(seconds, min_size=len(batches), max_size=len(batches)))
    curve = [(float(b), t) for b, t in zip(batches, times, strict=True)]
    x = data.draw(st.sampled_from(batches))
    assert _kernel_seconds(curve, x, "profiled") == dict(curve)[float(x)]


@given(sizes, st.data(), seconds, seconds)
def test_interpolated_tier_never_sees_the_micro_batch_it_predicts(batches, data, t1, t2):
    times = data.draw(st.lists(seconds, min_size=len(batches), max_size=len(batches)))
    x = data.draw(st.sampled_from(batches))
    curve = {float(b): t for b, t in zip(batches, times, strict=True)}
    one = _kernel_seconds(list({**curve, float(x): t1}.items()), x, "interpolated")
    two = _kernel_seconds(list({**curve, float(x): t2}.items()), x, "interpolated")
    assert one == two
    without = _kernel_seconds([p for p in curve.items() if p[0] != x], x, "interpolated")
    assert one == without


@given(sizes, st.floats(1e-6, 1e-2), st.floats(0.0, 1e-3), st.integers(1, 256))
def test_interpolation_recovers_an_affine_kernel(batches, a, b, x):
    curve = [(float(n), a + b * n) for n in batches if n != x]
    assume(len(curve) >= 2)
    assert interpolate(curve, x) == pytest.approx(a + b * x, rel=1e-6)


def test_a_size_without_other_points_falls_back_to_the_kind_model():
    """...and the profiled tier, the first of TIERS, is the default."""
    kind_only = _kernel_seconds([(8.0, 1.0)], 8, "kind")
    assert _kernel_seconds([(8.0, 1.0)], 8, "interpolated") == kind_only != 1.0
    assert _kernel_seconds([(8.0, 1.0)], 8, "profiled") == 1.0
    with pytest.raises(ValueError, match="tier"):
        KindCost(PROFILE, KernelCalibration({}), tier="layer")
    assert np.isfinite(kind_only) and KindCost(PROFILE, KernelCalibration({})).tier == TIERS[0]
