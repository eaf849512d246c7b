"""The Map's data as one binary message: a JSON header, then typed arrays.

The browser turns each array into a JavaScript typed array over the same bytes (no parsing)
and hands them to deck.gl as binary attributes, so a million detections cost a few tens of
megabytes and no JSON of every footprint.

    bytes 0-7    MAGIC
    bytes 8-11   the header's length H in bytes (uint32, little-endian)
    12 .. 12+H   the header: UTF-8 JSON, padded with spaces to a multiple of 8 bytes
    then         the arrays, each at an offset (from the end of the header) that is a
                 multiple of 8; the header's "arrays" names each: [type, offset, length]

A message either carries the columns ("base": ids, positions, status codes, sources,
periods, scores, footprints) or only what changed since the browser got them ("changes":
detection id, status now, the tooltip's words on its last verdict), or footprints in view.
"""
from __future__ import annotations

import json

import numpy as np

from .map_layers import (DRAW_ORDER, STATUS_COLOURS, STATUS_LABELS, Footprints, MapColumns,
                         view_state)

MAGIC = b"RVMAP\x00\x01\x00"
TYPES = {"int32": np.int32, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8,
         "float32": np.float32}


def pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """One message: the header (with the arrays' places added) and the arrays."""
    places, chunks, offset = {}, [], 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        kind = array.dtype.name
        if kind not in TYPES:
            raise ValueError(f"array {name} has unsupported type {kind}")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        places[name] = [kind, offset, int(array.size)]
        padding = (-len(data)) % 8
        chunks.append(data + b"\0" * padding)
        offset += len(data) + padding
    text = json.dumps({**header, "arrays": places}, ensure_ascii=False,
                      separators=(",", ":")).encode()
    text += b" " * ((-(len(text) + 12)) % 8)
    return b"".join([MAGIC, len(text).to_bytes(4, "little"), text, *chunks])


def unpack(message: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of a message made by pack."""
    if message[:8] != MAGIC:
        raise ValueError("not a map message")
    length = int.from_bytes(message[8:12], "little")
    header = json.loads(message[12:12 + length])
    start = 12 + length
    arrays = {}
    for name, (kind, offset, size) in header.pop("arrays").items():
        dtype = np.dtype(TYPES[kind]).newbyteorder("<")
        arrays[name] = np.frombuffer(message, dtype, size, start + offset)
    return header, arrays


def footprint_arrays(footprints: Footprints, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}_owner": footprints.owner.astype(np.int32),
            f"{prefix}_starts": footprints.starts.astype(np.uint32),
            f"{prefix}_xy": footprints.xy.astype(np.float32).reshape(-1)}


def legend() -> dict:
    """Colours and words for each status, for the browser's drawing and tooltip."""
    return {"colours": {s: list(c) for s, c in STATUS_COLOURS.items()},
            "labels": dict(STATUS_LABELS), "order": list(DRAW_ORDER)}


def message(token: str, changes: list[tuple] = (), columns: MapColumns | None = None,
            view_footprints: tuple | None = None, extra: dict | None = None) -> bytes:
    """A message for the browser: the columns (when it lacks them, or they were read anew),
    the changes since they were read, and, when asked, the footprints in its view:
    (bbox, Footprints, complete)."""
    header = {"kind": "update" if columns is None else "base", "token": token,
              "changes": [list(c) for c in changes], **(extra or {})}
    arrays = {}
    if columns is not None:
        if columns.detections and int(columns.ids.max()) >= 2 ** 31:
            raise ValueError("detection ids beyond 2^31 cannot be sent to the map")
        header.update({"n": columns.detections, "statuses": columns.statuses,
                       "sources": columns.sources, "periods": columns.periods,
                       "last": {str(k): v for k, v in columns.last.items()},
                       "bounds": columns.bounds, "view": view_state(columns.bounds),
                       "all_footprints": columns.all_footprints,
                       "no_footprint": columns.no_footprint, **legend()})
        arrays = {"ids": columns.ids.astype(np.int32), "lonlat": columns.lonlat.reshape(-1),
                  "status": columns.status, "source": columns.source, "period": columns.period,
                  "score": columns.score, **footprint_arrays(columns.footprints, "fp")}
    if view_footprints is not None:
        bbox, footprints, complete = view_footprints
        header["view_footprints"] = {"bbox": list(bbox), "complete": complete}
        arrays.update(footprint_arrays(footprints, "vf"))
    return pack(header, arrays)
