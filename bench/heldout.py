"""Benchmark: a model trained through the product on the 111 fixture pairs, scored on real
before/after pairs from places nobody here trained or tuned on.

The held-out pairs are joelibaceta/sat-mining-detector's test split (115 pairs, the
fixtures are its validation split): the `dataset/` folder of a checkout of that repository
(dataset_test.csv and the .npy chips; no licence is stated, so it is read from where it
lies and never copied into this project). Each pair is written as two GeoTIFFs the way the
fixture pairs are (6 bands B02 B03 B04 B08 B11 B12, reflectance x 10000, 10 m, local UTM
around the site's centre) and scored with `detect AFTER --before BEFORE --raw`, as a
reviewer would score a new place. Prints the held-out ROC AUC with the same interval method
as the card (sites resampled), beside the card's nested figure and interval, for all the
pairs and for those at places the model never saw: the source's splits are not made by
site, and 25 of its 115 test pairs lie within 3 km (the product's site distance) of a
fixture pair.

    .venv/bin/python -m bench.heldout --dataset PATH/TO/sat-mining-detector/dataset
        [--split test] [--model DIR_WITH_model.keras] [--seed 1] [--scores OUT.json]
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.train import PAIRS

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")


def write_pair(row: dict, dataset: Path, folder: Path) -> tuple[Path, Path]:
    """The pair's two chips as GeoTIFFs like the fixtures': local UTM, 10 m pixels, the
    site's centre at the middle."""
    import rasterio
    from pyproj import CRS, Transformer
    from rasterio.transform import from_origin

    lon, lat = float(row["longitude"]), float(row["latitude"])
    zone = int((lon + 180) // 6) + 1
    crs = CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    paths = []
    for side in ("t0", "t1"):
        chip = np.load(dataset / row[f"{side}_path"])          # (48, 48, 6) int16
        path = folder / f"{row['sample_id']}_{side}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=chip.shape[1],
                           height=chip.shape[0], count=chip.shape[2], dtype=chip.dtype,
                           crs=crs, transform=from_origin(round(x - 240), round(y + 240), 10, 10)) as out:
            out.write(np.moveaxis(chip, -1, 0))
            for i, band in enumerate(BANDS, start=1):
                out.set_band_description(i, band)
        paths.append(path)
    return paths[0], paths[1]


def score_pairs(model: Path, rows: list[dict], dataset: Path, folder: Path) -> np.ndarray:
    """Each pair's score from `detect AFTER --before BEFORE --raw` (one 48-px patch)."""
    from review.cli import main as cli

    scores = []
    for row in rows:
        before, after = write_pair(row, dataset, folder)
        raw = folder / f"{row['sample_id']}.geojson"
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["detect", str(after), "--before", str(before), "--model", str(model),
                        "--out", str(folder / "found.geojson"), "--raw", str(raw), "--quiet",
                        "--period", f"{row['t1_start']}/{row['t1_end']}"])
        assert code == 0, row["sample_id"]
        features = json.loads(raw.read_text())["features"]
        assert len(features) == 1, (row["sample_id"], len(features))
        scores.append(float(features[0]["properties"]["score"]))
    return np.array(scores)


def nearest_fixture_m(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Metres from each point to the nearest fixture pair (the product's site distance
    formula)."""
    fixtures = list(csv.DictReader(open(PAIRS / "pairs.csv")))
    flon = np.array([float(r["longitude"]) for r in fixtures])
    flat = np.array([float(r["latitude"]) for r in fixtures])
    dx = (lon[:, None] - flon[None]) * 111_320.0 * np.cos(np.radians(lat[:, None]))
    dy = (lat[:, None] - flat[None]) * 110_574.0
    return np.hypot(dx, dy).min(axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", type=Path, help="a folder with model.keras and model.json "
                        "(bench.train --keep); trained here when not given")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scores", type=Path, help="write each pair's score here (JSON)")
    args = parser.parse_args()
    table = args.dataset / f"dataset_{args.split}.csv"
    if not table.exists():
        print(f"{table}: no such file (give the dataset/ folder of sat-mining-detector)",
              file=sys.stderr)
        return 2
    os.environ.setdefault("REVIEW_MODEL_CACHE", str(PAIRS.parent.parent / "models" / "earthrise"))
    rows = list(csv.DictReader(open(table)))
    fixture_sites = {(r["longitude"], r["latitude"]) for r in csv.DictReader(open(PAIRS / "pairs.csv"))}
    assert not any((r["longitude"], r["latitude"]) in fixture_sites for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.model is None:
            from bench.train import load_pairs
            from review.cli import main as cli

            db = str(folder / "review.db")
            load_pairs(folder, db)
            assert cli(["train", "--db", db, "--out", str(folder / "model.keras"), "--seed",
                        str(args.seed), "--quiet"]) == 0
            args.model = folder
        model = args.model / "model.keras"
        card = json.loads((args.model / "model.json").read_text())
        scores = score_pairs(model, rows, args.dataset, folder)
    from review.learning.metrics import intervals_by_site
    from review.learning.splits import SITE_DISTANCE_M, site_groups

    labels = np.array([int(r["label"]) for r in rows])
    groups = site_groups(np.array([float(r["longitude"]) for r in rows]),
                         np.array([float(r["latitude"]) for r in rows]))
    held, _ = intervals_by_site(labels, scores[None], (scores >= card["t_main"])[None], groups,
                                args.seed)
    nested = card["validation"]
    auc, low, high = nested["roc_auc"]
    h = held["roc_auc"]
    inside = low <= h[0] <= high
    print(f"held out ({args.split} split, {len(rows)} pairs, {labels.sum()} mines, "
          f"{held['sites']} sites): ROC AUC {h[0]:.3f} (95% {h[1]:.3f} to {h[2]:.3f}); "
          f"precision {held['precision'][0]:.3f}, recall {held['recall'][0]:.3f} at the card's "
          f"threshold {card['t_main']:.3f}")
    lon = np.array([float(r["longitude"]) for r in rows])
    lat = np.array([float(r["latitude"]) for r in rows])
    unseen = nearest_fixture_m(lon, lat) >= SITE_DISTANCE_M
    far, _ = intervals_by_site(labels[unseen], scores[unseen][None],
                               (scores[unseen] >= card["t_main"])[None], groups[unseen], args.seed)
    f = far["roc_auc"]
    print(f"held out at places it never saw (no fixture pair within {SITE_DISTANCE_M / 1000:g} "
          f"km: {unseen.sum()} pairs, {labels[unseen].sum()} mines, {far['sites']} sites): "
          f"ROC AUC {f[0]:.3f} (95% {f[1]:.3f} to {f[2]:.3f}); precision "
          f"{far['precision'][0]:.3f}, recall {far['recall'][0]:.3f}")
    if args.scores:
        args.scores.write_text(json.dumps({r["sample_id"]: float(v) for r, v in zip(rows, scores)}))
    print(f"the card (nested, {nested['fold_draws']} fold draws): ROC AUC {auc:.3f} "
          f"(95% {low:.3f} to {high:.3f}), precision {nested['precision'][0]:.3f}, recall "
          f"{nested['recall'][0]:.3f}; held-out ROC AUC {'inside' if inside else 'OUTSIDE'} "
          f"the card's interval")
    return 0


if __name__ == "__main__":
    sys.exit(main())
