"""Tests of harness.quantiles: exact grouped quantiles in two passes over chunks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.quantiles import GroupQuantiles

QS = (0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_subnormal=True)
_samples = st.lists(st.one_of(_floats, st.just(math.nan), st.sampled_from([0.0, -0.0, 1.5])))


def _expected(values: list[float], q: float) -> float:
    ranked = np.sort(np.array([v for v in values if not math.isnan(v)], dtype=np.float64))
    if not len(ranked):
        return math.nan
    position = q * (len(ranked) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(ranked) - 1)
    return float(ranked[lo] + (ranked[hi] - ranked[lo]) * (position - lo))


def _run(chunks: list[list[float]]) -> GroupQuantiles:
    quantiles = GroupQuantiles(QS)
    for chunk in chunks:
        quantiles.count("g", chunk)
    for chunk in chunks:
        quantiles.collect("g", chunk)
    return quantiles


@given(st.lists(_samples, min_size=1, max_size=6))
def test_quantiles_equal_sorting_every_sample(chunks: list[list[float]]) -> None:
    everything = [v for chunk in chunks for v in chunk]
    found = _run(chunks).result("g")
    assert found.count == len(everything)
    ranked = [v for v in everything if not math.isnan(v)]
    assert found.max == max(ranked) if ranked else math.isnan(found.max)
    for q in QS:
        expected = _expected(everything, q)
        assert found.values[q] == expected or (math.isnan(expected) and math.isnan(found.values[q]))


def test_many_samples_in_a_few_bins_agree_with_numpy() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(2.5, 0.8, size=50_000)
    chunks = [values[i : i + 7_000] for i in range(0, len(values), 7_000)]
    found = _run([list(chunk) for chunk in chunks]).result("g")
    for q in QS:
        assert found.values[q] == pytest.approx(np.quantile(values, q), rel=1e-12)
        assert found.lower[q] <= found.values[q] <= found.upper[q]
    assert found.max == values.max()


def test_groups_are_kept_apart() -> None:
    quantiles = GroupQuantiles((0.5,))
    quantiles.count("a", [1.0, 2.0, 3.0])
    quantiles.count("b", [10.0])
    quantiles.collect("a", [1.0, 2.0, 3.0])
    quantiles.collect("b", [10.0])
    assert quantiles.groups() == ["a", "b"]
    assert quantiles.result("a").values[0.5] == 2.0
    assert quantiles.result("b").values[0.5] == 10.0


def test_counting_after_collecting_is_refused() -> None:
    quantiles = GroupQuantiles((0.5,))
    quantiles.count("a", [1.0])
    quantiles.collect("a", [1.0])
    with pytest.raises(RuntimeError):
        quantiles.count("a", [2.0])


def test_a_second_pass_over_other_samples_is_detected() -> None:
    quantiles = GroupQuantiles((0.5,))
    quantiles.count("a", [1.0, 2.0, 3.0])
    quantiles.collect("a", [1.0])
    with pytest.raises(RuntimeError):
        quantiles.result("a")
