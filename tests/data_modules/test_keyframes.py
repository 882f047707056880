"""Keyframe choice: uniform grid as before, difference-based choice on synthetic clips."""

from __future__ import annotations

import numpy as np
import pytest
from finsta_pl.data_modules.video import sample_indices as video_sample_indices

from finsta_pl.graphs.keyframes import (
    candidate_indices,
    difference_keyframes,
    sample_indices,
    select_keyframes,
    thumbnails,
)


def _clip(n: int = 64, change: int = 29, side: int = 48) -> np.ndarray:
    """Gray noise-free clip with a slow drift, then a sudden cut to a bright red square at ``change``."""
    clip = np.zeros((n, side, side, 3), np.uint8)
    for t in range(n):
        clip[t] = 40 + t // 8  # slow brightness drift: small differences everywhere
        if t >= change:
            clip[t, 8:40, 8:40] = (230, 20, 20)
    return clip


def test_uniform_matches_video_sampler() -> None:
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(candidate_indices(100, 8, "uniform", rng=rng_a), video_sample_indices(100, 8, rng_b))
    np.testing.assert_array_equal(sample_indices(5, 8), video_sample_indices(5, 8))
    with pytest.raises(ValueError):
        candidate_indices(100, 8, "best")


def test_candidate_grid_is_sorted_unique() -> None:
    c = candidate_indices(100, 8, "difference", factor=4)
    assert len(c) == 32 and np.all(np.diff(c) > 0)
    assert len(candidate_indices(20, 8, "difference", factor=4)) == 20
    np.testing.assert_array_equal(candidate_indices(5, 8, "difference"), sample_indices(5, 8))


def test_sudden_change_gets_keyframes_around_it() -> None:
    clip = _clip()
    idx = np.arange(len(clip))
    frames, chosen = select_keyframes(clip, idx, 4, "difference")
    assert len(chosen) == 4 and np.all(np.diff(chosen) > 0) and chosen[0] == 0
    assert 29 in chosen  # the first frame after the cut
    np.testing.assert_array_equal(frames, clip[chosen])
    again = select_keyframes(clip, idx, 4, "difference")[1]
    np.testing.assert_array_equal(chosen, again)  # deterministic
    # Uniform sampling misses the cut by several frames; the uniform path returns candidates unchanged.
    uni = sample_indices(64, 4)
    assert np.abs(uni - 29).min() > 2
    assert select_keyframes(clip[uni], uni, 4, "uniform")[1] is uni


def test_static_clip_spreads_evenly_and_short_inputs_repeat() -> None:
    still = np.full((32, 16, 16, 3), 90, np.uint8)
    pos = difference_keyframes(thumbnails(still, 8), 4)
    assert pos[0] == 0 and np.all(np.diff(pos) >= 6)  # no bunching when nothing changes
    np.testing.assert_array_equal(difference_keyframes(thumbnails(still[:3], 8), 5), sample_indices(3, 5))
    assert thumbnails(still[:0]).shape == (0, 32, 32)
