"""Domain errors. Raised inside review/, turned into messages at the edge (review/cli/, review/ui/).

Every message is written for the person at the keyboard: it says what is wrong
and, where there is one, what to do about it.
"""


class ReviewError(Exception):
    """Base of every error the product reports to a user rather than crashing on.

    `details` (optional) holds what a person need not read first (the underlying error),
    shown apart from the message, e.g. in an expander."""

    details: str | None = None

    def __init__(self, *args, details: str | None = None):
        super().__init__(*args)
        if details is not None:
            self.details = details


class ImageryError(ReviewError):
    """A tile cannot be used: not a raster, unreadable, not georeferenced, too large."""


class BandError(ImageryError):
    """A tile's bands cannot be matched, by name, to what a model needs."""


class ModelError(ReviewError):
    """A model cannot be found, downloaded, verified or loaded."""


class StoreError(ReviewError):
    """The review database refused an operation."""


def sentence(text: str) -> str:
    """A message as one sentence: capital first letter, full stop at the end. A message
    that opens with a name (a file, a path, an identifier: a word with a dot, slash,
    underscore or digit in it) keeps that name as it is spelt."""
    text = " ".join(str(text).split())
    if not text:
        return text
    first = text.split(" ", 1)[0].rstrip(":,;")
    if not any(c in first for c in "./\\_") and not any(c.isdigit() for c in first):
        text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), to quote inside our own."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
