"""Benchmark: detect as a whole process against the published way, and the scoring loops.

    .venv/bin/python -m bench.throughput [--size 2048] [--model 48px_v4.21] [--repeat 1]
                                         [--published-batch 32,engine] [--per-patch] [--big]

Whole processes (wall time of the subprocess, Python and TensorFlow start-up included):
(i)  `python -m review detect TILE --model M --out RAW --raw --quiet`: this product;
(ii) the published way (earthrise-media/mining-detector's pipeline): read the tile, cut
     every chip on the stride grid with a footprint polygon each (GeoDataFrame in the
     tile's CRS, then to_crs EPSG:4326), scale, one `model.predict(chips, batch_size=N)`,
     and write every patch's footprint and score with geopandas `to_file`.
Scoring loops alone (each in its own process, model loaded and warmed up first):
(b) the published loop: read the whole tile, cut every chip into a list, scale, one
    model.predict(batch_size=N);
(c) this product's engine (review.detection.detect.score_tile: windowed strips, views, one copy per
    batch, a compiled call at the device's batch size, reading overlapped with compute).
--per-patch adds (a), one model call per patch (naive code; rate from 300 patches).

The published way, (ii) and (b), runs once for each batch size N in --published-batch
(default "32,engine"): 32 is Keras' default (what the published code gets, as it passes no
batch size), and "engine" is the batch size the engine itself uses on this device,
review.detection.detect.default_batch_size(device_description()) (256 on CPU, 1024 on a
GPU), asked of a separate process before anything is timed. With both, the engine's lead
over the published way at batch 32 splits into what the batch size alone gives (the
published way at the engine's batch) and what the rest of the engine gives; the table
gives the engine's lead over each, with each row's batch size.

The tile is built from the real L1C fixture scenes (13 bands), mirrored to fill the size.
The scores of (i) and every (ii), and of (c) and every (b), must agree within 1e-5. --big also
runs (c) on a 10,000 x 10,000 tile. Peak memory is each process's own (max RSS).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
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

    from review.detection.detect import patch_grid
    from review.detection.imagery import open_tile

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


def run_method(method: str, tile_path: Path, model_id: str, out: Path, batch: int = 32) -> dict:
    from review.detection.detect import default_batch_size
    from review.detection.models import load_model
    from review.detection.tensorflow_runtime import device_description

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
        batch_array = card.scale(np.array(chips, dtype=np.float32))
        scores = model.keras_model.predict(batch_array, batch_size=batch, verbose=0)[:, 0]
        seconds = time.perf_counter() - started
        count = total = len(chips)
    else:
        from review.detection.detect import score_tile
        from review.detection.imagery import open_tile

        result = score_tile(open_tile(tile_path, max_pixels=10**9), model, max_nodata_fraction=1.0)
        seconds = time.perf_counter() - started
        positions = list(zip(result.rows.tolist(), result.cols.tolist()))
        scores = result.scores
        count = total = len(scores)
    np.save(out, np.column_stack([np.array(positions, dtype=np.float64), np.asarray(scores, np.float64)]))
    used = {"a": 1, "b": batch}.get(method, default_batch_size(device))   # (c): score_tile's own choice
    return {"method": method, "patches": count, "tile_patches": total, "seconds": seconds,
            "device": device, "batch_size": used,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def engine_batch() -> dict:
    """The batch size the engine uses on this device, found as score_tile finds it."""
    from review.detection.detect import default_batch_size
    from review.detection.tensorflow_runtime import device_description

    device = device_description()
    return {"device": device, "batch_size": default_batch_size(device)}


def published_process(tile_path: Path, model_id: str, out: Path, batch: int = 32) -> dict:
    """(ii) as one process: the published pipeline's steps, timed from the first import;
    the one change is `batch_size=batch` in its predict call (32 is Keras' default)."""
    started = time.perf_counter()
    import geopandas as gpd
    import keras
    import rasterio
    from shapely.geometry import Polygon

    from review.detection.detect import patch_grid
    from review.detection.imagery import open_tile
    from review.detection.models import CARDS

    card = CARDS[model_id]
    model = keras.models.load_model(Path(os.environ["REVIEW_MODEL_CACHE"]) / card.filename,
                                    compile=False)
    loop_started = time.perf_counter()
    tile = open_tile(tile_path)                          # the product's grid, for the same patches
    with rasterio.open(tile_path) as src:
        names = [d.upper().replace("B0", "B") for d in src.descriptions]
        pixels = np.moveaxis(src.read([names.index(b) + 1 for b in card.bands]), 0, -1)
        transform, crs = src.transform, src.crs
    pixels = np.clip(pixels / 10000.0, 0, 1)
    size = card.patch_size
    rows, cols = patch_grid(tile, size, card.stride)
    chips, footprints, where = [], [], []
    for c in cols:                                       # column by column, as published
        for r in rows:
            chips.append(pixels[r:r + size, c:c + size])
            west, north = transform * (c, r)
            east, south = transform * (c + size, r + size)
            footprints.append(Polygon([(west, north), (west, south), (east, south),
                                       (east, north), (west, north)]))
            where.append((int(r), int(c)))
    geoms = gpd.GeoDataFrame(geometry=footprints, crs=crs).to_crs("EPSG:4326")
    scores = model.predict(np.array(chips), batch_size=batch, verbose=0)[:, 0]
    loop_seconds = time.perf_counter() - loop_started
    frame = gpd.GeoDataFrame({"pred": scores.astype(float), "row": [r for r, _ in where],
                              "col": [c for _, c in where]}, geometry=geoms.geometry, crs="EPSG:4326")
    frame.to_file(out, driver="GeoJSON")
    return {"patches": len(scores), "batch_size": batch, "loop_seconds": loop_seconds,
            "in_process_seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _machine_busy_seconds() -> float:
    """CPU-seconds the whole machine has been busy (all processes, all cores)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return float("nan")
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _whole_process(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall time of a command, and the CPU-seconds other people's processes used meanwhile."""
    busy, own = _machine_busy_seconds(), _own_seconds()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=_environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    others = (_machine_busy_seconds() - busy) - (_own_seconds() - own)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return seconds, max(others, 0.0), done


def detect_whole(tile: Path, model: str, out: Path) -> dict:
    seconds, others, done = _whole_process([sys.executable, "-m", "review", "detect", str(tile),
                                            "--model", model, "--out", str(out), "--raw", "--quiet"])
    loop = re.search(r" in ([0-9.]+) s ", done.stdout)
    return {"seconds": seconds, "others_cpu": others, "loop_seconds": float(loop.group(1)) if loop else float("nan"),
            "said": done.stdout.strip()}


def published_whole(tile: Path, model: str, out: Path, batch: int) -> dict:
    seconds, others, done = _whole_process([sys.executable, "-m", "bench.throughput", "--published",
                                            "--tile", str(tile), "--model", model, "--out", str(out),
                                            "--batch", str(batch)])
    return {"seconds": seconds, "others_cpu": others, **json.loads(done.stdout.strip().splitlines()[-1])}


def _raw_scores(path: Path, field: str) -> dict:
    features = json.loads(path.read_text())["features"]
    return {(f["properties"]["row"], f["properties"]["col"]): f["properties"][field] for f in features}


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model}; flags: {' '.join(shown) or 'none of avx2/avx512'}; avx512f {'present' if 'avx512f' in flags else 'ABSENT'}"


def _child(method: str, tile: Path, model: str, folder: Path, batch: int = 32) -> dict:
    out = folder / f"scores_{method}{batch if method == 'b' else ''}_{tile.stem}.npy"
    _, others, done = _whole_process([sys.executable, "-m", "bench.throughput", "--child", method,
                                      "--tile", str(tile), "--model", model, "--out", str(out),
                                      "--batch", str(batch)])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["scores_file"] = str(out)
    result["others_cpu"] = others
    return result


KERAS_DEFAULT_BATCH = 32  # what model.predict uses when given no batch_size, as the published code


def published_batches(spec: str) -> list[str]:
    """--published-batch: comma-separated batch sizes, 'engine' for the engine's own."""
    items = [item.strip().lower() for item in spec.split(",") if item.strip()]
    for item in items:
        if item != "engine" and not (item.isdigit() and int(item) > 0):
            raise argparse.ArgumentTypeError(f"{item!r} is neither a positive whole number nor 'engine'")
    if not items:
        raise argparse.ArgumentTypeError("give at least one batch size")
    return items


def _engine_batch_here() -> dict:
    """The engine's batch size on this device, from a process of its own (TensorFlow is not
    imported by this one, so it takes no memory or CPU while the others are timed)."""
    done = subprocess.run([sys.executable, "-m", "bench.throughput", "--engine-batch"], cwd=REPO,
                          env=_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"finding the engine's batch size failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _max_difference(ours: dict, theirs: dict) -> float | None:
    """Max |score difference| over the same patches; None when the patches differ."""
    if ours.keys() != theirs.keys():
        return None
    return max(abs(ours[k] - theirs[k]) for k in theirs)


def _agreement(difference: float | None) -> str:
    if difference is None:
        return "NOT THE SAME PATCHES"
    return f"{difference:.2e} ({'equal within 1e-5' if difference <= 1e-5 else 'NOT EQUAL'})"


def _runs(runs: list[dict]) -> str:
    return ", ".join("%.2f (others %.1f)" % (r["seconds"], r["others_cpu"]) for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--model", default="48px_v4.21")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each whole process this many times, alternating; report the fastest")
    parser.add_argument("--published-batch", type=published_batches, default=published_batches("32,engine"),
                        metavar="N,...",
                        help="batch sizes for the published way, (ii) and (b): whole numbers, or 'engine' "
                             "for the engine's own on this device (default: 32,engine; 32 is Keras' default)")
    parser.add_argument("--per-patch", action="store_true", help="also (a), one call per patch")
    parser.add_argument("--big", action="store_true", help="also (c) on a 10,000 x 10,000 tile")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--published", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine-batch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=KERAS_DEFAULT_BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(FIXTURES / "models" / "earthrise"))
    if args.child:
        print(json.dumps(run_method(args.child, args.tile, args.model, args.out, args.batch)))
        return 0
    if args.published:
        print(json.dumps(published_process(args.tile, args.model, args.out, args.batch)))
        return 0
    if args.engine_batch:
        print(json.dumps(engine_batch()))
        return 0
    if not SCENES:
        print(f"error: the L1C fixture scenes are not at {FIXTURES}", file=sys.stderr)
        return 2
    engine = _engine_batch_here() if "engine" in args.published_batch else None
    batches: list[int] = []
    for item in args.published_batch:
        size = engine["batch_size"] if item == "engine" else int(item)
        if size not in batches:
            batches.append(size)
    folder = Path(tempfile.mkdtemp(prefix="review-throughput-"))
    tile = build_tile(folder / f"tile_{args.size}.tif", args.size)
    area_km2 = args.size * args.size * 100 / 1e6
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB, Python "
          f"{platform.python_version()}; load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"cpu: {cpu_flags()}")
    if engine:
        print(f"engine's batch size on this device ({engine['device']}): {engine['batch_size']} "
              f"(review.detection.detect.default_batch_size)")

    # Whole processes, alternating so that a change in load hits all alike.
    detect_runs: list[dict] = []
    published_runs: dict[int, list[dict]] = {n: [] for n in batches}
    for _ in range(args.repeat):
        detect_runs.append(detect_whole(tile, args.model, folder / "detect_raw.geojson"))
        for n in batches:
            published_runs[n].append(published_whole(tile, args.model, folder / f"published_raw_{n}.geojson", n))
    mine = min(detect_runs, key=lambda r: r["seconds"])
    theirs = {n: min(runs, key=lambda r: r["seconds"]) for n, runs in published_runs.items()}
    ours = _raw_scores(folder / "detect_raw.geojson", "score")
    whole_diff = {n: _max_difference(ours, _raw_scores(folder / f"published_raw_{n}.geojson", "pred"))
                  for n in batches}

    loop_runs: dict[str, list[dict]] = {f"b{n}": [] for n in batches}
    loop_runs["c"] = []
    for _ in range(args.repeat):                         # alternating, as the whole processes
        for n in batches:
            loop_runs[f"b{n}"].append(_child("b", tile, args.model, folder, n))
        loop_runs["c"].append(_child("c", tile, args.model, folder))
    if args.per_patch:
        loop_runs["a"] = [_child("a", tile, args.model, folder)]
    results = {m: min(runs, key=lambda r: r["seconds"]) for m, runs in loop_runs.items()}
    c = np.load(results["c"]["scores_file"])
    c_scores = {(int(r), int(col)): s for r, col, s in c}
    loop_diff = {}
    for n in batches:
        b = np.load(results[f"b{n}"]["scores_file"])
        loop_diff[n] = _max_difference(c_scores, {(int(r), int(col)): s for r, col, s in b})
    engine_size = results["c"]["batch_size"]
    if engine and engine["batch_size"] != engine_size:
        print(f"warning: the engine's batch size was {engine['batch_size']} when asked, "
              f"{engine_size} in (c)'s process")

    def label(n: int) -> str:
        tags = [tag for size, tag in ((KERAS_DEFAULT_BATCH, "Keras default"), (engine_size, "engine's"))
                if n == size]
        return f"batch {n}" + (f" ({', '.join(tags)})" if tags else "")

    load = os.getloadavg()
    print(f"tile: {args.size} x {args.size} px, 13 bands of real L1C pixels ({area_km2:,.0f} km²); "
          f"model {args.model}; {results['c']['patches']:,} patches; device {results['c']['device']}")
    print(f"whole processes (wall time, start-up included; fastest of {args.repeat}):")
    print(f"  (i)  detect --raw, engine, {'batch %d' % engine_size:26} {mine['seconds']:7.2f} s   "
          f"(its scoring loop {mine['loop_seconds']:.1f} s, as it reports)")
    for n in batches:
        print(f"  (ii) published way at {label(n):31} {theirs[n]['seconds']:7.2f} s   "
              f"(its scoring loop {theirs[n]['loop_seconds']:.1f} s; peak {theirs[n]['peak_rss_mb']:,.0f} MB)")
        print(f"       (ii, batch {n})/(i) = {theirs[n]['seconds'] / mine['seconds']:.2f}x whole processes; "
              f"scoring loops inside them {theirs[n]['loop_seconds'] / mine['loop_seconds']:.2f}x; "
              f"raw outputs: {len(ours):,} patches, max |score difference| {_agreement(whole_diff[n])}")
    if args.repeat > 1:
        median_mine = float(np.median([r["seconds"] for r in detect_runs]))
        medians = "; ".join(
            f"published batch {n} {float(np.median([r['seconds'] for r in runs])):.2f} s "
            f"({float(np.median([r['seconds'] for r in runs])) / median_mine:.2f}x)"
            for n, runs in published_runs.items())
        print(f"  medians: detect {median_mine:.2f} s; {medians}")
    print(f"  every run, s (CPU-seconds other people's processes used meanwhile; 0 = quiet): "
          f"detect {_runs(detect_runs)}; " +
          "; ".join(f"published batch {n} {_runs(runs)}" for n, runs in published_runs.items()))

    print(f"scoring loops alone (read, cut, scale, score; model loaded and warmed up; fastest of {args.repeat}):")
    rates = {}
    names = {"a": "(a) one call per patch", "c": f"(c) engine, batch {engine_size}",
             **{f"b{n}": f"(b) cut chips + predict, {label(n)}" for n in batches}}
    for key in ["a"] * args.per_patch + [f"b{n}" for n in batches] + ["c"]:
        result = results[key]
        rate = result["patches"] / result["seconds"]
        rates[key] = rate
        km2_min = rate / result["tile_patches"] * area_km2 * 60
        subset = f" (rate from {result['patches']} patches)" if key == "a" else ""
        print(f"  {names[key]:50} {result['seconds'] if key != 'a' else float('nan'):6.2f} s "
              f"{rate:7,.0f} patches/s {km2_min:8,.1f} km²/min  peak {result['peak_rss_mb']:6,.0f} MB"
              f"{subset} (others {result['others_cpu']:.1f} CPU-s)")
    for key in [f"b{n}" for n in batches] + ["c"]:
        print(f"  every {key} run, s: " + _runs(loop_runs[key]))
    for n in batches:
        print(f"  (b, batch {n})/(c) time = c/b rate = {rates['c'] / rates[f'b{n}']:.2f}x "
              f"(fastest of {args.repeat} each); scores (c) vs (b, batch {n}): {len(c_scores):,} patches, "
              f"max |difference| {_agreement(loop_diff[n])}")
    if "a" in rates:
        print(f"  c/a rate = {rates['c'] / rates['a']:.1f}")

    print(f"summary: the engine's lead over the published way at each batch size (fastest of {args.repeat}):")
    print("| | batch size | whole process, s | its time / engine's | scoring loop alone, s "
          "| its time / engine's | max abs score difference vs engine (whole; loop) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| engine: (i) detect --raw; (c) score_tile | {engine_size} (engine's) | {mine['seconds']:.2f} | 1.00x "
          f"| {results['c']['seconds']:.2f} | 1.00x | |")
    for n in batches:
        print(f"| published way: (ii); (b) | {label(n)[len('batch '):]} | {theirs[n]['seconds']:.2f} "
              f"| {theirs[n]['seconds'] / mine['seconds']:.2f}x | {results[f'b{n}']['seconds']:.2f} "
              f"| {results[f'b{n}']['seconds'] / results['c']['seconds']:.2f}x "
              f"| {_agreement(whole_diff[n])}; {_agreement(loop_diff[n])} |")
    first = batches[0]
    for n in batches[1:]:
        print(f"  the batch size alone, published way at batch {first} / at batch {n}: "
              f"{theirs[first]['seconds'] / theirs[n]['seconds']:.2f}x whole process, "
              f"{results[f'b{first}']['seconds'] / results[f'b{n}']['seconds']:.2f}x scoring loop")
    if args.big:
        big = build_tile(folder / "tile_10000.tif", 10000)
        result = _child("c", big, args.model, folder)
        print(f"  10,000 x 10,000 tile (10,000 km²): {result['patches']:,} patches in "
              f"{result['seconds']:.0f} s, {result['patches'] / result['seconds']:,.0f} patches/s, "
              f"peak {result['peak_rss_mb']:,.0f} MB")
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
