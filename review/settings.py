"""Where the product keeps its files, and the limits a user can change.

Everything is an environment variable with a sensible default, so the README's one
command works on a fresh machine and tests can point each setting at a temporary
folder or a server on 127.0.0.1.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("REVIEW_DATA_DIR", REPO_ROOT / "data"))


def db_path() -> Path:
    return Path(os.environ.get("REVIEW_DB", data_dir() / "review.db"))


def model_cache_dir() -> Path:
    """Folder that holds downloaded model checkpoints (tests point it at ../shared)."""
    return Path(os.environ.get("REVIEW_MODEL_CACHE", data_dir() / "models"))


def model_base_url() -> str | None:
    """Override for the published models' URL prefix (a mirror, or 127.0.0.1 in tests)."""
    return os.environ.get("REVIEW_MODEL_BASE_URL") or None


def max_tile_pixels() -> int:
    """Largest tile (width x height) the engine accepts; protects small machines."""
    return int(os.environ.get("REVIEW_MAX_TILE_PIXELS", 400_000_000))


EARTHRISE_DATA = ("https://github.com/earthrise-media/mining-detector/raw/"
                  "bbbcb2d722c930626f322bec751a22e4acb22750/data/outputs/")


MAP_FOOTPRINTS = 100_000       # measured: bench/map_browser.py (200,000 settle 10.1 s with every footprint, 7.2 s without)


def map_footprints() -> int:
    """Up to how many detections the Map sends every footprint of at once; beyond, dots, and
    the footprints in view when zoomed in (lower it for a browser short of memory)."""
    return int(os.environ.get("REVIEW_MAP_FOOTPRINTS", MAP_FOOTPRINTS))


def example_url() -> str:
    """The published detections layer the home page offers to load on an empty database."""
    return os.environ.get("REVIEW_EXAMPLE_URL", EARTHRISE_DATA +
                          "48px_v3.7/amazon_1_48px_v3.7_0.50_2023-01-01_2023-12-31.geojson")


def basemap_url() -> str:
    """XYZ tile URL of the high-resolution basemap shown beside the chips."""
    return os.environ.get(
        "REVIEW_BASEMAP_URL",
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}")


def basemap_name() -> str:
    return os.environ.get("REVIEW_BASEMAP_NAME", "Esri World Imagery")


def tile_cache_dir() -> Path:
    """Fetched composites (and the partial downloads a retry resumes from)."""
    return Path(os.environ.get("REVIEW_TILE_CACHE", data_dir() / "tiles"))


def stac_url() -> str:
    return os.environ.get("REVIEW_STAC_URL", "https://earth-search.aws.element84.com/v1")


def stac_collection() -> str:
    return os.environ.get("REVIEW_STAC_COLLECTION", "sentinel-2-l2a")


def fetch_max_km2() -> float:
    """Largest area the dashboard fetches in one go; the CLI has no such limit."""
    return float(os.environ.get("REVIEW_FETCH_MAX_KM2", 400))


def wayback_config_url() -> str:
    """Esri World Imagery Wayback's public list of dated releases."""
    return os.environ.get("REVIEW_WAYBACK_CONFIG_URL",
                          "https://s3-us-west-2.amazonaws.com/config.maptiles.arcgis.com/waybackconfig.json")


def anonymous_network() -> bool:
    """Whether visitors from other machines may review without accounts (as reviewers; the
    dashboard says so on every page). Off by default: open a dashboard to a team with
    accounts."""
    return os.environ.get("REVIEW_ALLOW_ANONYMOUS_NETWORK", "").lower() in ("1", "true", "yes")
