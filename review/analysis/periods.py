"""A detection's period as a label: its year (of the period's middle day) or its quarter."""
from __future__ import annotations

from datetime import date


def period_label(start: str | None, end: str | None, by: str) -> str | None:
    """'2024' for a year; with by='quarter', '2024Q3' for a period within one quarter.

    The year is that of the period's middle day: a period given as 2020-12-31 to
    2021-12-31 (an exclusive start) is 2021, and one of several years is counted once, in
    its middle year, not in the year of its first day."""
    if not start:
        return None
    year = start[:4]
    if end and len(start) >= 10 and len(end) >= 10:
        try:
            first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
        except ValueError:
            first = last = None
        if first and last and last > first:
            year = str((first + (last - first) / 2).year)
    if by == "quarter" and end and len(start) >= 7 and len(end) >= 7:
        first_q = (int(start[5:7]) - 1) // 3 + 1
        last_q = (int(end[5:7]) - 1) // 3 + 1
        if end[:4] == year and first_q == last_q:
            return f"{year}Q{first_q}"
    return year
