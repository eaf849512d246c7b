"""Benchmark: patches per second, km² per minute and peak memory of three ways to run a model.

    .venv/bin/python -m bench.throughput [--size 2000] [--model 48px_v4.21] [--big]

(a) one model call per patch (model.predict on each chip, as naive code does);
(b) the published pipeline's way: cut every chip, then one model.predict at Keras'
    default batch size (32);
(c) this product's engine (review.detect.score_tile: windowed strips, views, one copy per
    batch, a compiled call at the device's batch size, reading overlapped with compute).

The tile is built from the real L1C fixture scenes (13 bands), mirrored to fill the size.
Each method runs in its own process so its peak memory (max RSS) is its own. The engine's
scores must equal (b)'s within 1e-5. --big also runs (c) on a 10,000 x 10,000 tile.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("REVIEW_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
SCENES = sorted((FIXTURES / "imagery" / "eolearn_slovenia_l1c").glob("reference_scene_*.tif"))
SUBSET_A = 300          # (a) is slow: its rate is measured on this many patches


def build_tile(path: Path, size: int) -> Path:
    """A size x size 13-band tile of real L1C pixels: 100 px blocks of the five scenes, flipped."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    blocks = []
    for scene in SCENES:
        with rasterio.open(scene) as src:
            names = src.descriptions
            block = src.read()[:, :100, :100]
        blocks += [block, block[:, ::-1, :], block[:, :, ::-1], block[:, ::-1, ::-1]]
    profile = dict(driver="GTiff", width=size, height=size, count=13, dtype="uint16",
                   crs="EPSG:32633", transform=from_origin(400000, 5100000, 10, 10),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as dst:
        for index, name in enumerate(names, start=1):
            dst.set_band_description(index, name)
        for top in range(0, size, 1000):
            rows = min(1000, size - top)
            strip = np.zeros((13, rows, size), dtype="uint16")
            for r in range(0, rows, 100):
                for c in range(0, size, 100):
                    block = blocks[((top + r) // 100 * 7 + c // 100) % len(blocks)]
                    h, w = min(100, rows - r), min(100, size - c)
                    strip[:, r:r + h, c:c + w] = block[:, :h, :w]
            dst.write(strip, window=Window(0, top, size, rows))
    return path


def _chips(tile_path: Path, card):
    """The published way of cutting: the whole tile in memory, then a list of chips."""
    import rasterio

    from review.detect import patch_grid
    from review.imagery import open_tile

    tile = open_tile(tile_path)
    with rasterio.open(tile_path) as src:
        names = [d.upper().replace("B0", "B") for d in src.descriptions]
        cube = src.read([names.index(b) + 1 for b in card.bands])
    cube = np.moveaxis(cube, 0, -1)
    rows, cols = patch_grid(tile, card.patch_size, card.stride)
    size = card.patch_size
    positions = [(r, c) for r in rows for c in cols]
    chips = [cube[r:r + size, c:c + size] for r, c in positions]
    return chips, positions


def run_method(method: str, tile_path: Path, model_id: str, out: Path) -> dict:
    from review.models import device_description, load_model

    model = load_model(model_id)
    card = model.card
    device = device_description()
    model.scores(card.scale(np.zeros((2, card.patch_size, card.patch_size, len(card.bands)), np.float32)))
    model.keras_model.predict(np.zeros((2, card.patch_size, card.patch_size, len(card.bands)), np.float32),
                              verbose=0)                                      # warm both paths up
    started = time.perf_counter()
    if method == "a":
        chips, positions = _chips(tile_path, card)
        total = len(chips)
        chips, positions = chips[:SUBSET_A], positions[:SUBSET_A]
        started = time.perf_counter()
        scores = [float(model.keras_model.predict(card.scale(chip[None].astype(np.float32)), verbose=0)[0, 0])
                  for chip in chips]
        seconds = time.perf_counter() - started
        count = len(chips)
    elif method == "b":
        chips, positions = _chips(tile_path, card)
        batch = card.scale(np.array(chips, dtype=np.float32))
        scores = model.keras_model.predict(batch, verbose=0)[:, 0]
        seconds = time.perf_counter() - started
        count = total = len(chips)
    else:
        from review.detect import score_tile
        from review.imagery import open_tile

        result = score_tile(open_tile(tile_path, max_pixels=10**9), model, max_nodata_fraction=1.0)
        seconds = time.perf_counter() - started
        positions = list(zip(result.rows.tolist(), result.cols.tolist()))
        scores = result.scores
        count = total = len(scores)
    np.save(out, np.column_stack([np.array(positions, dtype=np.float64), np.asarray(scores, np.float64)]))
    return {"method": method, "patches": count, "tile_patches": total, "seconds": seconds,
            "device": device, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(method: str, tile: Path, model: str, folder: Path) -> dict:
    out = folder / f"scores_{method}_{tile.stem}.npy"
    done = subprocess.run([sys.executable, "-m", "bench.throughput", "--child", method, "--tile", str(tile),
                           "--model", model, "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"method {method} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["scores_file"] = str(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--model", default="48px_v4.21")
    parser.add_argument("--big", action="store_true", help="also (c) on a 10,000 x 10,000 tile")
    parser.add_argument("--child")
    parser.add_argument("--tile", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(FIXTURES / "models" / "earthrise"))
    if args.child:
        print(json.dumps(run_method(args.child, args.tile, args.model, args.out)))
        return 0
    if not SCENES:
        print(f"error: the L1C fixture scenes are not at {FIXTURES}", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="review-throughput-"))
    tile = build_tile(folder / f"tile_{args.size}.tif", args.size)
    area_km2 = args.size * args.size * 100 / 1e6
    results = {m: _child(m, tile, args.model, folder) for m in ("a", "b", "c")}
    b = np.load(results["b"]["scores_file"])
    c = np.load(results["c"]["scores_file"])
    b_scores = {(int(r), int(col)): s for r, col, s in b}
    differences = [abs(s - b_scores[(int(r), int(col))]) for r, col, s in c]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {results['c']['device']}, "
          f"Python {platform.python_version()}")
    print(f"tile: {args.size} x {args.size} px, 13 bands of real L1C pixels ({area_km2:,.0f} km²); "
          f"model {args.model}; {results['c']['patches']:,} patches")
    rates = {}
    names = {"a": "(a) one call per patch", "b": "(b) cut chips + predict(batch 32)", "c": "(c) engine"}
    for key, result in results.items():
        rate = result["patches"] / result["seconds"]
        rates[key] = rate
        km2_min = rate / result["tile_patches"] * area_km2 * 60
        subset = f" (rate from {result['patches']} patches)" if key == "a" else ""
        print(f"  {names[key]:38} {rate:9,.0f} patches/s {km2_min:9,.1f} km²/min  "
              f"peak {result['peak_rss_mb']:7,.0f} MB{subset}")
    print(f"  c/b = {rates['c'] / rates['b']:.2f}   c/a = {rates['c'] / rates['a']:.1f}")
    print(f"  scores (c) vs (b): {len(differences):,} patches, max |difference| {max(differences):.2e}"
          f" ({'equal within 1e-5' if max(differences) <= 1e-5 else 'NOT EQUAL'})")
    if args.big:
        big = build_tile(folder / "tile_10000.tif", 10000)
        result = _child("c", big, args.model, folder)
        print(f"  10,000 x 10,000 tile (10,000 km²): {result['patches']:,} patches in "
              f"{result['seconds']:.0f} s, {result['patches'] / result['seconds']:,.0f} patches/s, "
              f"peak {result['peak_rss_mb']:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
