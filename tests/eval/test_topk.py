from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from longtail.common.topk import topk


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 40)),
              elements=st.sampled_from([0.0, 1.0, 2.0, 2.5, -np.inf, np.nan])),
       st.integers(1, 45))
def test_topk_matches_a_full_sort_with_id_tie_break(scores: np.ndarray, k: int) -> None:
    items, values = topk(scores, k)
    for row in range(scores.shape[0]):
        clean = np.where(np.isnan(scores[row]), -np.inf, scores[row])
        ranked = [j for j in sorted(range(len(clean)), key=lambda j: (-clean[j], j)) if clean[j] > -np.inf]
        expected = ranked[: min(k, scores.shape[1])]
        got = [int(j) for j in items[row] if j >= 0]
        assert got == expected
        assert np.all(np.isneginf(values[row][items[row] < 0]))
