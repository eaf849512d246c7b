"""Commands of a place's spectral time series: `timeseries` (issue 27)."""
from __future__ import annotations

COMMANDS: dict = {}
