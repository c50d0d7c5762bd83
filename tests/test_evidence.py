"""Verdicts on comparisons come from the figures: change the figures, the words change."""

import re

import pytest

from deepnets import compare, spread


def test_spread_matches_a_second_computation():
    s = spread([0.82, 0.85, 0.80])
    assert s.mean == pytest.approx((0.82 + 0.85 + 0.80) / 3)
    assert (s.lo, s.hi, s.n) == (0.80, 0.85, 3)
    assert s.format() == "82.3% (80.0 to 85.0%, 3 seeds)"


def test_overlapping_ranges_are_within_the_noise():
    c = compare([0.80, 0.83, 0.85], [0.82, 0.84, 0.86], "off", "on")
    assert not c.beyond_noise and c.words == "within the seed noise"
    assert "ranges over seeds overlap" in c.sentence()
    assert c.diff == pytest.approx(0.01333, abs=1e-4)


def test_moving_one_side_apart_changes_the_words():
    a = [0.80, 0.81, 0.82]
    near = compare(a, [0.815, 0.83, 0.84], "tanh", "relu")
    far = compare(a, [0.83, 0.84, 0.85], "tanh", "relu")
    assert near.words == "within the seed noise"
    assert far.words == "larger than the seed noise"
    assert "every seed of relu is above every seed of tanh" in far.sentence()
    below = compare([0.83, 0.84, 0.85], a, "tanh", "relu")
    assert below.beyond_noise and "below" in below.evidence


def test_one_seed_per_side_never_shows_a_difference():
    c = compare([0.80], [0.95])
    assert not c.beyond_noise and not c.tested and "one seed" in c.evidence
    assert c.words == "not tested against the seed noise"  # untested is not "within the noise"


def test_a_measured_noise_floor_decides_when_given():
    assert compare([0.80], [0.83], noise_floor=0.02).beyond_noise
    assert not compare([0.80], [0.81], noise_floor=0.02).beyond_noise
    with pytest.raises(ValueError, match="cannot be negative"):
        compare([0.8], [0.9], noise_floor=-0.1)


def test_empty_spread_says_what_to_do():
    with pytest.raises(ValueError, match="at least one value"):
        spread([])


def test_a_difference_of_gaps_is_shown_in_points_not_percent():
    gaps = compare([0.05, 0.06], [0.02, 0.03], "dropout", "none", quantity="gap", value_unit=" points")
    assert "%" not in gaps.sentence()
    assert "5.5 points (5.0 to 6.0 points, 2 seeds)" in gaps.sentence()
    assert "%" in compare([0.8, 0.9], [0.7, 0.8]).sentence()  # accuracies keep their percent sign


def test_digits_sets_the_decimals_of_values_ranges_difference_and_floor():
    # tanh/ReLU epoch ratios: means 0.77 and 1.0433, difference 0.2733, all written out by hand
    sgd, adamw = [0.72, 0.79, 0.80], [1.0, 1.0, 1.13]
    two = compare(sgd, adamw, "SGD", "AdamW", quantity="epoch ratio", scale=1, unit="x", digits=2)
    assert ("epoch ratio 1.04 (1.00 to 1.13, 3 seeds) vs 0.77 (0.72 to 0.80, 3 seeds), "
            "a difference of +0.27 x") in two.sentence()
    assert all(len(n.split(".")[1]) == 2 for n in re.findall(r"\d+\.\d+", two.sentence()))
    one = compare(sgd, adamw, "SGD", "AdamW", quantity="epoch ratio", scale=1, unit="x")
    assert one.sentence() == ("AdamW vs SGD: epoch ratio 1.0 (1.0 to 1.1, 3 seeds) vs 0.8 (0.7 to 0.8, 3 seeds), "
                              "a difference of +0.3 x: larger than the seed noise (every seed of AdamW is above "
                              "every seed of SGD).")
    assert compare([0.80], [0.83], noise_floor=0.0137, digits=2).evidence == "the seed-noise floor is 1.37 points"
    assert compare([0.80], [0.83], noise_floor=0.0137).evidence == "the seed-noise floor is 1.4 points"
    with pytest.raises(TypeError, match="digits must be a whole number"):
        compare(sgd, adamw, digits=1.5)
