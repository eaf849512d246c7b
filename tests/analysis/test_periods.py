"""A period's label: its year is that of its middle day; a quarter only when the whole
period lies in one quarter."""
import pytest

from review.analysis.periods import period_label


@pytest.mark.parametrize("start, end, by, label", [
    ("2024-01-01", "2024-12-31", "year", "2024"), ("2025-07-01", "2025-09-30", "quarter", "2025Q3"),
    ("2024-01-01", "2024-12-31", "quarter", "2024"), ("2013-03-27", "2013-03-27", "quarter", "2013Q1"),
    (None, None, "year", None),
    ("2020-12-31", "2021-12-31", "year", "2021"), ("2020-12-31", "2023-12-31", "year", "2022"),
    ("2019-06-01", "2020-05-31", "year", "2019"), ("2024-01-01", None, "year", "2024"),
])
def test_period_labels(start, end, by, label):
    assert period_label(start, end, by) == label
