"""Fetch a file over HTTP(S) into a local folder: atomically, with progress, checksum optional.

A partial download never sits where a complete file is expected: bytes go to a
temporary `.part` file beside the destination and are moved into place only when
complete (and, when a sha256 is given, verified).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from .errors import ReviewError
from .progress import Progress


class DownloadFailed(ReviewError):
    """The file could not be fetched or did not match its checksum; nothing was kept."""


def fetch(url: str, destination: Path, sha256: str | None = None,
          progress: Progress | None = None, timeout: float = 60) -> Path:
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, partial = tempfile.mkstemp(prefix=destination.name + ".", suffix=".part",
                                       dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(done, total, destination.name)
        if sha256 and digest.hexdigest() != sha256:
            raise DownloadFailed(
                f"{destination.name} from {url} has sha256 {digest.hexdigest()[:12]}..., "
                f"expected {sha256[:12]}...; the file was not kept")
        os.replace(partial, destination)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadFailed(f"could not download {url}: {reason}") from exc
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return destination
