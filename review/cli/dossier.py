"""Commands of the site dossier: `dossier SITE_ID OUT.pdf` (issue 27)."""
from __future__ import annotations

COMMANDS: dict = {}
