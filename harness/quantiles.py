"""Exact quantiles of grouped samples in two passes, holding bin counts instead of the samples.

The report needs read-latency percentiles per phase and tier over every replayed read, and its
memory must not follow the recording's length. Pass 1 counts each group's samples per bin (a bin
is 1/256 of an octave: the float's sign, exponent and top 8 mantissa bits); the counts locate the
bins holding the order statistics the quantiles interpolate between. Pass 2 keeps only the samples
of those bins, a few per mille of the data, and reads the order statistics off them exactly. The
answer is what sorting every sample would give (linear interpolation, as pandas and numpy), not an
estimate; NaN samples are counted but never ranked, as pandas does.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["GroupQuantiles", "QuantileResult"]

_SHIFT = 44  # 64 - 1 sign - 11 exponent - 8 mantissa bits: 256 bins per octave
_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)


def _order_keys(values: np.ndarray) -> np.ndarray:
    """int64 keys ordered as the (non-NaN) float64 values are, negatives and zeros included."""
    bits = values.view(np.int64)
    # A negative float's bits order backwards: flip its magnitude bits (the classic radix trick).
    return bits ^ ((bits >> 63) & _MAGNITUDE)


def _bins(values: np.ndarray) -> np.ndarray:
    return _order_keys(values) >> _SHIFT


@dataclass(frozen=True, slots=True)
class QuantileResult:
    """One group's figures: sample count (NaN included), max, and per quantile the interpolated
    value with the two order statistics it lies between (equal when it falls on a sample)."""

    count: int
    max: float
    values: dict[float, float]
    lower: dict[float, float]
    upper: dict[float, float]


@dataclass(slots=True)
class _Group:
    count: int = 0
    ranked: int = 0  # non-NaN samples
    max: float = math.nan
    bins: dict[int, int] | None = None
    # Pass 2: the bins holding wanted ranks -> (samples ranked before the bin, samples kept).
    kept: dict[int, tuple[int, list[np.ndarray]]] | None = None


class GroupQuantiles:
    """Exact quantiles of many groups: `count` every chunk, then `collect` every chunk again."""

    def __init__(self, quantiles: Sequence[float]) -> None:
        self.quantiles = tuple(quantiles)
        self._groups: dict[Hashable, _Group] = {}
        self._collecting = False

    def count(self, group: Hashable, samples: Iterable[float] | np.ndarray) -> None:
        """Pass 1: count one chunk of a group's samples into their bins."""
        if self._collecting:
            raise RuntimeError("count() after collect() started: pass 1 is over")
        values = np.asarray(samples, dtype=np.float64)
        state = self._groups.setdefault(group, _Group(bins={}))
        state.count += len(values)
        values = values[~np.isnan(values)]
        if not len(values):
            return
        state.ranked += len(values)
        top = float(values.max())
        state.max = top if math.isnan(state.max) else max(state.max, top)
        assert state.bins is not None
        found, counts = np.unique(_bins(values), return_counts=True)
        for index, number in zip(found.tolist(), counts.tolist(), strict=True):
            state.bins[index] = state.bins.get(index, 0) + number

    def collect(self, group: Hashable, samples: Iterable[float] | np.ndarray) -> None:
        """Pass 2: keep the samples of one chunk that fall into a bin holding a wanted rank."""
        if not self._collecting:
            self._start_collecting()
        state = self._groups.get(group)
        if state is None or not state.kept:
            return
        values = np.asarray(samples, dtype=np.float64)
        values = values[~np.isnan(values)]
        bins = _bins(values)
        for index, (_, kept) in state.kept.items():
            chosen = values[bins == index]
            if len(chosen):
                kept.append(chosen)

    def groups(self) -> list[Hashable]:
        """Every group seen in pass 1, in the order first seen."""
        return list(self._groups)

    def result(self, group: Hashable) -> QuantileResult:
        """The group's exact figures (after both passes over the same samples)."""
        if not self._collecting:
            self._start_collecting()
        state = self._groups[group]
        values: dict[float, float] = {}
        lower: dict[float, float] = {}
        upper: dict[float, float] = {}
        for q in self.quantiles:
            if not state.ranked:
                values[q] = lower[q] = upper[q] = math.nan
                continue
            lo, hi, frac = _ranks(q, state.ranked)
            low, high = self._at(state, lo), self._at(state, hi)
            lower[q], upper[q] = low, high
            values[q] = low + (high - low) * frac
        return QuantileResult(state.count, state.max, values, lower, upper)

    def _start_collecting(self) -> None:
        self._collecting = True
        for state in self._groups.values():
            state.kept = {}
            if not state.ranked:
                continue
            assert state.bins is not None
            order = sorted(state.bins)
            before = np.cumsum([0] + [state.bins[b] for b in order])  # ranked before each bin
            for q in self.quantiles:
                lo, hi, _ = _ranks(q, state.ranked)
                for rank in (lo, hi):
                    at = int(np.searchsorted(before, rank, side="right")) - 1
                    state.kept.setdefault(order[at], (int(before[at]), []))

    def _at(self, state: _Group, rank: int) -> float:
        """The sample of rank `rank` (0-based) in sorted order, from the kept bin holding it."""
        assert state.kept is not None
        for base, kept in state.kept.values():
            size = sum(len(chunk) for chunk in kept)
            if base <= rank < base + size:
                merged = np.sort(np.concatenate(kept))
                return float(merged[rank - base])
        raise RuntimeError("collect() did not see the samples count() saw")


def _ranks(q: float, n: int) -> tuple[int, int, float]:
    """The two ranks quantile `q` of `n` sorted samples interpolates between, and the fraction."""
    position = q * (n - 1)
    lo = math.floor(position)
    return lo, min(lo + 1, n - 1), position - lo
