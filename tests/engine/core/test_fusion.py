"""Reciprocal rank fusion (engine/core/fusion.py)."""

from __future__ import annotations

import pytest

from engine.core.fusion import RRF_K, reciprocal_rank_fusion


def test_an_item_both_rankings_like_beats_one_only_one_ranks_first() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]])

    assert [item for item, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))


def test_ties_keep_the_order_items_were_first_seen() -> None:
    assert [i for i, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]


def test_weights_favour_one_ranking() -> None:
    fused = reciprocal_rank_fusion([["dense"], ["lexical"]], weights=[1.0, 2.0])
    assert fused[0][0] == "lexical"
    with pytest.raises(ValueError, match="one weight per ranking"):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def test_no_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank_fusion([[], []]) == []
