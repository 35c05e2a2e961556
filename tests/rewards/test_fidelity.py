"""Our rewards scored against the peers' own semantics (test oracles) on a fixed corpus of completions.

The rewards that claim a source's definition must agree with it on every completion; the agreement of our
own, stricter rewards with the sources is measured, and pinned so that a change in it is noticed.
"""

from __future__ import annotations

import pytest

from .fidelity_corpus import build_corpus, score_table


@pytest.fixture(scope="module")
def table():
    return score_table(build_corpus(4000, seed=0))


@pytest.mark.parametrize("pair", ["tinyzero_countdown vs tinyzero", "mini_r1_format vs mini_r1_format",
                                  "mini_r1_equation vs mini_r1_equation"])
def test_source_faithful_rewards_agree_everywhere(table, pair):
    row = table[pair]
    assert row["disagreements"] == 0, row["examples"]


@pytest.mark.parametrize(
    ("pair", "low", "high"),
    [  # measured at this commit on this corpus (a synthetic mix, not model outputs): see notes/refs-findings.md
        ("countdown_equation vs tinyzero_correct", 0.80, 0.87),
        ("countdown_format vs mini_r1_format", 0.49, 0.57),
        ("countdown_equation vs mini_r1_equation", 0.75, 0.83),
    ],
)
def test_our_stricter_rewards_differ_from_the_sources_by_a_measured_amount(table, pair, low, high):
    assert low <= table[pair]["agreement"] <= high, table[pair]["agreement"]


def test_corpus_is_fixed_and_covers_the_disputed_spellings():
    items = build_corpus(4000, seed=0)
    assert items == build_corpus(4000, seed=0)
    kinds = {it.kind.split("|")[0] for it in items}
    assert {"decimal", "leading-zero", "equation", "multiline", "unicode-digit", "plain"} <= kinds
    text = "".join(it.completion for it in items)
    for piece in ("**", "//", "--", "\nUser:", "</think>\n\n<answer>", "<answer><answer>"):
        assert piece in text, piece
