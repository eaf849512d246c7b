"""Commands of context layers: `context add|list|remove|overlaps` (issue 27)."""
from __future__ import annotations

COMMANDS: dict = {}
