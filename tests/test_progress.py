"""The one progress report shape: (done, total, what)."""
from review.progress import fraction, silent


def test_fraction_is_clipped_and_zero_when_the_total_is_unknown():
    assert fraction(5, 10) == 0.5
    assert fraction(12, 10) == 1.0 and fraction(-1, 10) == 0.0
    assert fraction(300, None) == 0.0 and fraction(3, 0) == 0.0
    assert silent(1, None, "bytes") is None
