"""Fetch a file over HTTP(S) into a local folder: atomically, with progress, checksum optional.

A partial download never sits where a complete file is expected: bytes go to a
temporary `.part` file beside the destination and are moved into place only when
complete (and, when a sha256 is given, verified).
"""
from __future__ import annotations

import hashlib
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .. import files
from ..errors import ReviewError, first_line
from ..progress import Progress


class DownloadFailed(ReviewError):
    """The file could not be fetched or did not match its checksum; nothing was kept."""

    unreachable = False      # True when the server could not be reached at all (offline)


class Unreachable(DownloadFailed):
    """No connection to the server: no internet, a blocked network, or the server is down."""

    unreachable = True


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _unreachable(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (socket.gaierror, socket.timeout, TimeoutError, ConnectionError)) or \
        (isinstance(reason, OSError) and not isinstance(exc, urllib.error.HTTPError)
         and isinstance(exc, urllib.error.URLError))


def fetch(url: str, destination: Path, sha256: str | None = None,
          progress: Progress | None = None, timeout: float = 60) -> Path:
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with files.replacing(destination, make_folder=False) as partial:
            with open(partial, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                done = 0
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total, destination.name)
            if sha256 and digest.hexdigest() != sha256:      # raised here: nothing is kept
                raise DownloadFailed(
                    f"{destination.name} from {url} has sha256 {digest.hexdigest()[:12]}..., "
                    f"expected {sha256[:12]}...; the file was not kept")
    except urllib.error.HTTPError as exc:
        advice = ("the address may be wrong or the file was moved" if exc.code in (404, 410)
                  else "try again later")
        raise DownloadFailed(f"{host_of(url)} did not send {destination.name} (HTTP {exc.code}): "
                             f"{advice}", details=f"{url}: {first_line(exc)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        if _unreachable(exc):
            raise Unreachable(f"could not reach {host_of(url)} to download {destination.name}: "
                              "there is no internet connection, or the network blocks it",
                              details=f"{url}: {first_line(getattr(exc, 'reason', exc))}") from exc
        raise DownloadFailed(f"could not download {destination.name} from {host_of(url)}; "
                             "try again", details=f"{url}: {first_line(exc)}") from exc
    return destination
