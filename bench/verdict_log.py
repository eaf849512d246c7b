"""What the signed verdict log costs: `log checkpoint` and `verify-log` on 100,000 verdicts,
how much the proofs add to an export, and how long `verify-export` takes to check it.

    .venv/bin/python -m bench.verdict_log [--verdicts 100000] [--detections 50000]

Builds a database in a temporary folder (detections in a row over Pará, verdicts hash-chained
as the product writes them), then times the commands as a user runs them (a fresh process
each, imports included) and the in-process work alone. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build(path: Path, detections: int, verdicts: int) -> None:
    import shapely

    from review import verdict_log
    from review.store import connect, transaction

    db = connect(path)
    rows = []
    for i in range(detections):
        lon, lat = -57.0 + (i % 500) * 0.01, -5.0 + (i // 500) * 0.01
        box = shapely.box(lon, lat, lon + 0.004, lat + 0.004)
        rows.append({"source": "bench", "external_id": str(i), "geometry": shapely.to_geojson(box),
                     "lon": lon + 0.002, "lat": lat + 0.002, "west": lon, "south": lat,
                     "east": lon + 0.004, "north": lat + 0.004, "score": 0.5 + (i % 50) / 100,
                     "threshold": 0.5, "period_start": "2023-01-01", "period_end": "2023-12-31",
                     "model_id": "48px_v3.7", "status": "pending"})
    with transaction(db):
        db["detections"].insert_all(rows, batch_size=5000)
    prev, out = verdict_log.GENESIS, []
    for n in range(verdicts):
        verdict = ("verified", "false_positive", "unsure")[n % 3]
        row = {"id": n + 1, "detection_id": n % detections + 1, "reviewer": f"reviewer{n % 7}",
               "verdict": verdict, "reason": "riverbank" if verdict == "false_positive" else None,
               "note": f"looked at the pit, note {n}" if n % 4 == 0 else None,
               "after_source": "Sentinel-2 L2A median of 3 scenes (true colour)",
               "after_start": "2023-06-01", "after_end": "2023-08-31", "model_id": "48px_v3.7",
               "threshold": 0.5, "created_at": f"2026-12-07T00:{n // 6000 % 60:02d}:00.000+00:00",
               "via": "dashboard"}
        row["prev_hash"], row["hash"] = prev, verdict_log.row_hash(row, prev)
        prev = row["hash"]
        out.append(row)
    with transaction(db):
        db["verdicts"].insert_all(out, batch_size=5000)
        db.execute("update detections set status = (select verdict from verdicts v where "
                   "v.id = (select max(id) from verdicts w where w.detection_id = detections.id)) "
                   "where id in (select detection_id from verdicts)")


def timed(args: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "review", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {done.stderr.strip()}")
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=100_000)
    parser.add_argument("--detections", type=int, default=50_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-log-") as folder:
        folder = Path(folder)
        os.environ["REVIEW_DATA_DIR"] = str(folder / "data")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        path = folder / "review.db"
        started = time.perf_counter()
        build(path, options.detections, options.verdicts)
        built = time.perf_counter() - started
        checkpoint_s, _ = timed(["log", "checkpoint", "--db", str(path), "--out",
                                 str(folder / "cp.txt")], env)
        verify_s, _ = timed(["verify-log", "--db", str(path), "--checkpoint",
                             str(folder / "cp.txt")], env)
        from review.judging import transparency_log
        from review.judging.queue import Filters
        from review.publishing.export import features
        from review.store import connect
        from review.verdict_log import verify

        db = connect(path)
        start = time.perf_counter()
        transparency_log.snapshot(db)
        snapshot_s = time.perf_counter() - start
        start = time.perf_counter()
        verify(db)
        transparency_log.check(db, [("cp", (folder / "cp.txt").read_text())])
        check_s = time.perf_counter() - start
        export_s, _ = timed(["export", str(folder / "all.geojson"), "--status", "all", "--db",
                             str(path)], env)
        with_proofs = (folder / "all.geojson").stat().st_size
        verify_export_s, _ = timed(["verify-export", str(folder / "all.geojson")], env)
        plain = len(json.dumps({"type": "FeatureCollection",
                                "features": features(db, Filters(status=None))}).encode())
        result = {"verdicts": options.verdicts, "detections": options.detections,
                  "build_s": round(built, 1),
                  "log_checkpoint_cli_s": round(checkpoint_s, 2),
                  "verify_log_cli_s": round(verify_s, 2),
                  "checkpoint_in_process_s": round(snapshot_s, 2),
                  "verify_in_process_s": round(check_s, 2),
                  "export_cli_s": round(export_s, 1),
                  "verify_export_cli_s": round(verify_export_s, 1),
                  "export_bytes_with_proofs": with_proofs, "export_bytes_without_proofs": plain,
                  "proofs_share": round(1 - plain / with_proofs, 3)}
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
