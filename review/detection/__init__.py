"""Detection: from imagery to candidate mines in the store.

Owns reading tiles and naming their bands (imagery), the published and trained models and
their cards (models, downloads), TensorFlow's quiet import and device (tensorflow_runtime),
the layers of trained change models (pairnet: needed to load one), the scoring engine
(detect), candidates from scores (candidates), runs and detections written to the store
(runs), region-scale runs on a Dask cluster (region), several periods combined
(aggregate), Sentinel-2 fetched from STAC (fetch), uploads, external detections imported
(importers) and the checks before a run (preflight).

May import: the root modules only (store, settings, errors, progress, files, statistics).
"""
