"""Checks made before a detector run, so the Detect page can say in plain words why a tile
and a model do not fit (instead of a run that scores nothing), and which published model
a local file is."""
from __future__ import annotations

from pathlib import Path

from .detect import patch_grid
from .models import CARDS, ModelCard, card_for_checksum, sha256_of


def unnamed_bands(tile, card: ModelCard, bands_given: str | None) -> str | None:
    """Why the run cannot start when the tile names none of its bands (None if it can)."""
    if bands_given or any(name for name in tile.band_names):
        return None
    example = ",".join((list(card.bands) + ["-"] * len(tile.band_names))[:len(tile.band_names)])
    return (f"{tile.name} does not name its {len(tile.band_names)} bands, and model {card.id} needs "
            f"{', '.join(card.bands)}. Type the band names in file order in the box 'Band names "
            f"in file order' (under 'Bands, period and thresholds'), e.g. {example}, with - for "
            "a band the model does not use.")


def too_small(tile, card: ModelCard) -> str | None:
    """Why no patch of the model fits the tile (None when at least one does)."""
    rows, cols = patch_grid(tile, card.patch_size, card.stride)
    if len(rows) and len(cols):
        return None
    return (f"{tile.name} is {tile.width} × {tile.height} pixels, so no {card.patch_size}-pixel "
            f"patch of model {card.id} fits in it: a tile needs at least {card.patch_size} pixels "
            "each way. Use a larger tile or fetch a larger area.")


def published_card(path: str | Path) -> ModelCard | None:
    """The published model a local file is, recognised by its sha256 (None otherwise)."""
    path = Path(path)
    if not path.is_file():
        return None
    return card_for_checksum(sha256_of(path))


__all__ = ["CARDS", "published_card", "too_small", "unnamed_bands"]
