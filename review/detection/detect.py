"""Sliding-window inference: a tile and a model in, one score per patch out.

Patches sit on a grid anchored to the CRS origin (multiples of the stride in pixels),
not to the tile's corner, so two overlapping tiles of the same CRS and resolution
produce the same patches where they overlap. Only patches wholly inside the tile are
scored, and patches that are mostly nodata are skipped.

The tile is read in strips of patch rows, so memory stays bounded for any tile size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import as_strided
from rasterio.windows import Window

from ..errors import BandError, ImageryError, ModelError
from ..progress import Progress
from .imagery import Tile
from .models import LoadedModel, ModelCard

DEFAULT_BATCH_SIZE = 256
MAX_NODATA_FRACTION = 0.5
STRIP_BYTES = 32 * 2**20      # pixels per strip: small enough that the model starts at once


@dataclass
class PatchScores:
    """Raw output: the pixel offset of every scored patch in the tile, and its score."""

    tile: Tile
    card: ModelCard
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    device: str = "CPU"
    seconds: float = 0.0
    skipped_nodata: int = 0
    model_sha256: str | None = None

    @property
    def patch_size(self) -> int:
        return self.card.patch_size

    def __len__(self) -> int:
        return len(self.scores)

    def footprints(self) -> np.ndarray:
        """(N, 4) west, south, east, north of each patch in the tile's CRS."""
        t = self.tile.transform
        size = self.patch_size
        x0 = t.c + self.cols * t.a
        x1 = t.c + (self.cols + size) * t.a
        y0 = t.f + self.rows * t.e
        y1 = t.f + (self.rows + size) * t.e
        return np.column_stack([np.minimum(x0, x1), np.minimum(y0, y1),
                                np.maximum(x0, x1), np.maximum(y0, y1)])


def band_indexes(tile: Tile, card: ModelCard) -> list[int]:
    """1-based file indexes of the model's bands, in the model's order; matched by name."""
    if all(name is None for name in tile.band_names):
        raise BandError(
            f"{tile.name}: its {len(tile.band_names)} bands have no names; model {card.id} "
            f"needs {', '.join(card.bands)}; name the bands in file order, '-' for one to "
            f"ignore, e.g. {','.join(['B2', 'B3', 'B4', 'B8', '-', '-', '-', '-'][:len(tile.band_names)])}")
    indexes = {name: tile.band_index(name) for name in card.bands}
    missing = [name for name, index in indexes.items() if index is None]
    if missing:
        present = ", ".join(n for n in tile.band_names if n and n != "-") or "none"
        raise BandError(f"{tile.name}: model {card.id} needs bands {', '.join(missing)} "
                        f"which the tile lacks (it has {present})")
    return [indexes[name] for name in card.bands]


def check_compatible(tile: Tile, card: ModelCard) -> list[int]:
    indexes = band_indexes(tile, card)
    if tile.dtype == "uint8" and card.scaling in ("reflectance", "unit_norm"):
        raise ImageryError(
            f"{tile.name}: is 8-bit imagery (values 0-255, a rendered picture); model "
            f"{card.id} needs Sentinel-2 reflectance as digital numbers (reflectance x 10000)")
    return indexes


def grid_offsets(origin: float, pixel: float, length: int, patch: int, stride: int) -> np.ndarray:
    """Offsets (pixels) of patch starts along one axis, on the CRS-anchored grid.

    A tile too small for any grid patch but at least one patch long (a chip cut around
    a site, e.g. a 48-px before/after pair) is scored as one patch at its corner."""
    global_start = int(round(origin / pixel))
    first = (-global_start) % stride
    offsets = np.arange(first, length - patch + 1, stride, dtype=np.int64)
    if not len(offsets) and length >= patch:
        offsets = np.zeros(1, dtype=np.int64)
    return offsets


def patch_grid(tile: Tile, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    t = tile.transform
    rows = grid_offsets(t.f, t.e, tile.height, patch, stride)
    cols = grid_offsets(t.c, t.a, tile.width, patch, stride)
    return rows, cols


def on_grid_of(before: Tile, after: Tile) -> Tile:
    """The before tile as read on the after tile's grid (warped on the fly, nearest
    neighbour, so pixel values are kept), so both give the same ground pixel for pixel."""
    if (before.crs == after.crs and before.transform == after.transform
            and (before.width, before.height) == (after.width, after.height)):
        return before
    return replace(before, crs=after.crs, transform=after.transform, width=after.width,
                   height=after.height, source_crs=before.source_crs or before.crs)


def check_pair(after: Tile, before: Tile | None, card: ModelCard) -> tuple[list[int], list[int] | None]:
    """Band indexes of the after tile and, for a pair model, of the before tile; refuses a
    pair model given one tile and a before tile that does not overlap the after tile."""
    indexes = check_compatible(after, card)
    if not card.is_pair:
        return indexes, None
    if before is None:
        raise ModelError(f"model {card.id} compares a before and an after image; give the "
                         f"earlier tile as well as {after.name}")
    before_indexes = check_compatible(before, card)
    from rasterio.warp import transform_bounds

    west, south, east, north = transform_bounds(before.crs, after.crs, *before.bounds,
                                                densify_pts=21)
    a_west, a_south, a_east, a_north = after.bounds
    if west >= a_east or east <= a_west or south >= a_north or north <= a_south:
        raise ImageryError(f"{before.name} does not overlap {after.name}: the before and "
                           "after tiles must cover the same ground")
    return indexes, before_indexes


class _PairReader:
    """Reads the before and the after tile on the after tile's grid as one stack: the
    before bands, then the after bands; a pixel is valid where both are."""

    def __init__(self, before_reader, after_reader, before_indexes, after_indexes):
        self.before, self.after = before_reader, after_reader
        self.before_indexes, self.after_indexes = before_indexes, after_indexes

    def read(self, window, indexes=None, out_shape=None):
        before, before_valid = self.before.read(window, self.before_indexes, out_shape)
        after, after_valid = self.after.read(window, self.after_indexes, out_shape)
        return np.concatenate([before, after]), before_valid & after_valid


class PairTile:
    """An after tile and a before tile as one tile of twice the bands (engine view)."""

    def __init__(self, after: Tile, before: Tile, after_indexes, before_indexes):
        self.after, self.before = after, on_grid_of(before, after)
        self.after_indexes, self.before_indexes = after_indexes, before_indexes

    def __getattr__(self, name):
        return getattr(self.after, name)

    def reader(self):
        from contextlib import contextmanager

        @contextmanager
        def both():
            with self.before.reader() as before, self.after.reader() as after:
                yield _PairReader(before, after, self.before_indexes, self.after_indexes)

        return both()


def default_batch_size(device: str) -> int:
    """Measured on this project's machines: 256 keeps 2 CPU cores busy; a GPU wants more."""
    return 1024 if device.startswith("GPU") else DEFAULT_BATCH_SIZE


_DONE = object()


def _batches(tile: Tile, indexes: list[int], card: ModelCard, grid_rows, grid_cols,
             batch_size: int, max_nodata_fraction: float):
    """Read strips, scale each strip once, cut patches (one copy per batch): yields
    (scaled batch or None, row offsets, col offsets, patches skipped, grid cells covered).

    Scaling is elementwise, so scaling a strip and then cutting it gives exactly the
    patches that cutting and then scaling gave, with 1/4 of the arithmetic (every pixel
    sits in four patches) and no second copy of each batch."""
    size, stride = card.patch_size, card.stride
    rows_per_strip = _rows_per_strip(tile.width, len(indexes), size, stride)
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    count = 0

    def joined():
        if len(pending) == 1:
            return pending[0]
        return tuple(np.concatenate(parts) for parts in zip(*pending))

    with tile.reader() as reader:
        for first in range(0, len(grid_rows), rows_per_strip):
            strip_rows = grid_rows[first:first + rows_per_strip]
            top = int(strip_rows[0])
            height = int(strip_rows[-1]) + size - top
            data, valid = reader.read(Window(0, top, tile.width, height), indexes)
            data = np.moveaxis(data, 0, -1)                     # (rows, cols, bands), a view
            data[~valid] = 0                                    # as earthrise: nodata -> 0
            pixels = np.ascontiguousarray(card.scale(data))     # (rows, cols, bands), scaled
            invalid_counts = _window_sums(~valid, size)
            # Every patch as a view (rows, cols, P, P, bands): indexing it copies the patches
            # straight into model layout (N, P, P, bands).
            h, w, bands = pixels.shape
            s0, s1, s2 = pixels.strides
            views = as_strided(pixels, shape=(h - size + 1, w - size + 1, size, size, bands),
                               strides=(s0, s1, s0, s1, s2), writeable=False)
            rr, cc = np.meshgrid(strip_rows - top, grid_cols, indexing="ij")
            rr, cc = rr.ravel(), cc.ravel()
            keep = invalid_counts[rr, cc] <= max_nodata_fraction * size * size
            skipped = int((~keep).sum())
            rr, cc = rr[keep], cc[keep]
            position = 0
            while position < len(rr):
                take = batch_size - count
                r, c = rr[position:position + take], cc[position:position + take]
                position += len(r)
                pending.append((views[r, c], r + top, c))      # the one copy of the pixels
                count += len(r)
                if count >= batch_size:
                    yield (*joined(), 0, 0)
                    pending, count = [], 0
            yield None, None, None, skipped, len(strip_rows) * len(grid_cols)
        if pending:
            yield (*joined(), 0, 0)


def _prefetch(generator, depth: int = 2):
    """Run a generator in a thread, so reading the next strip overlaps the model's work."""
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in generator:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:          # handed to the consumer, raised there
            buffer.put(exc)

    thread = threading.Thread(target=produce, daemon=True, name="tile-reader")
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def score_tile(tile: Tile, model: LoadedModel, batch_size: int | None = None,
               max_nodata_fraction: float = MAX_NODATA_FRACTION,
               progress: Progress | None = None, before: Tile | None = None) -> PatchScores:
    """Score every grid patch of a tile with a loaded model. A pair model also needs the
    `before` tile, read on this tile's grid; a single-image model ignores it."""
    from .tensorflow_runtime import device_description

    card = model.card
    indexes, before_indexes = check_pair(tile, before, card)
    source = tile
    if before_indexes is not None:
        source = PairTile(tile, before, indexes, before_indexes)
        indexes = list(range(1, 2 * len(indexes) + 1))
    device = device_description()
    batch_size = batch_size or default_batch_size(device)
    grid_rows, grid_cols = patch_grid(tile, card.patch_size, card.stride)
    total = len(grid_rows) * len(grid_cols)
    started = time.perf_counter()
    out_rows, out_cols, out_scores = [], [], []
    skipped = done = 0
    batches = _batches(source, indexes, card, grid_rows, grid_cols, batch_size, max_nodata_fraction)
    for scaled, rows, cols, skipped_here, covered in _prefetch(batches):
        if scaled is not None:
            out_scores.append(model.scores(scaled))
            out_rows.append(rows)
            out_cols.append(cols)
        skipped += skipped_here
        done += covered
        if covered and progress:
            progress(done, total, "patches")

    def joined(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return PatchScores(tile=tile, card=card, rows=joined(out_rows, np.int64),
                       cols=joined(out_cols, np.int64), scores=joined(out_scores, np.float32),
                       device=device, seconds=time.perf_counter() - started,
                       skipped_nodata=skipped, model_sha256=model.sha256)


def _rows_per_strip(width: int, bands: int, size: int, stride: int) -> int:
    row_bytes = width * bands * 4
    return max(1, (STRIP_BYTES // row_bytes - size) // stride + 1)


def _window_sums(mask: np.ndarray, size: int) -> np.ndarray:
    """Count of True pixels in every size x size window, by a summed-area table."""
    table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = np.cumsum(np.cumsum(mask, axis=0), axis=1)
    return (table[size:, size:] - table[:-size, size:]
            - table[size:, :-size] + table[:-size, :-size])
