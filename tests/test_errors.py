"""Domain errors: what the CLI and the dashboard turn into one plain message."""
from review.errors import BandError, ImageryError, ReviewError, first_line


def test_first_line_quotes_only_the_first_line_of_a_cause():
    assert first_line(OSError("no such file\nTraceback (most recent call last): ...")) == "no such file"
    assert first_line(ValueError("x" * 500)) == "x" * 200
    assert first_line(KeyError()) == "KeyError"          # nothing to quote: its type


def test_every_domain_error_is_a_review_error():
    assert issubclass(BandError, ImageryError) and issubclass(ImageryError, ReviewError)


def test_a_message_that_opens_with_a_file_name_keeps_its_spelling():
    from review.errors import sentence

    assert sentence("garbage.geojson is not a file") == "garbage.geojson is not a file."
    assert sentence("nolatlon.csv: no latitude column") == "nolatlon.csv: no latitude column."
    assert sentence("galamsey_001 does not name its bands") == "galamsey_001 does not name its bands."
    assert sentence("the tile is empty") == "The tile is empty."
