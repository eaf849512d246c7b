"""Mining review: detect illegal mining in satellite tiles and confirm it by eye.

The package is a house in wings, each a subpackage that owns one concern. A wing may import
the root modules and the wings listed before it in WINGS, never one after it (nothing imports
up), and no two modules import each other (no circles); tests/test_layout.py checks both.

    root         store (SQLite schema, migrations, transactions, backup), verdict_log (the
                 hash chain), settings, errors, progress, files (atomic writes), statistics
    detection    tiles in -> scores -> candidates -> runs and detections in the store
    judging      the queue and its claims, verdicts, agreement, accounts, project settings
    review_imagery  the before/after pictures a person judges, prepared ahead and cached
    analysis     trends, sites through time, samples and area estimates, map layers
    publishing   exports (GeoJSON/GPKG/CSV/KMZ, evidence), field reports, OGC API serving
    learning     training change models on verdicts, evaluating and rescoring with them
    cli          python -m review ...: one module per wing registers its commands
    ui           the dashboard's pages: the only package that imports Streamlit

The flow of data: tiles (uploaded, fetched from STAC, or a user's scenes) and external
detections enter through detection, which stores scenes, runs and detections; review_imagery
cuts what a reviewer sees; judging records verdicts (append-only, hash-chained); analysis
and publishing read the store; learning trains on the verdicts and the imagery they saw and
hands its models back to detection to score with.
"""

__version__ = "0.1.0"

# Lower to higher: a wing may import the root and the wings before it, never one after it.
WINGS = ("detection", "judging", "review_imagery", "analysis", "publishing", "learning", "cli", "ui")
