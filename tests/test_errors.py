"""Domain errors: what the CLI and the dashboard turn into one plain message."""
from review.errors import BandError, ImageryError, ReviewError, first_line


def test_first_line_quotes_only_the_first_line_of_a_cause():
    assert first_line(OSError("no such file\nTraceback (most recent call last): ...")) == "no such file"
    assert first_line(ValueError("x" * 500)) == "x" * 200
    assert first_line(KeyError()) == "KeyError"          # nothing to quote: its type


def test_every_domain_error_is_a_review_error():
    assert issubclass(BandError, ImageryError) and issubclass(ImageryError, ReviewError)
