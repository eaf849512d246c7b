"""Publishing: what leaves the tool for other people.

Owns exports of verified detections and sites (GeoJSON, GeoPackage, CSV, evidence
pictures, training samples: export; Google Earth: kml), field reports with photos
(reports), the read-only OGC API - Features server (serve), and the stand-alone check
of a published export against its signed checkpoint (export_check).

May import: the root modules, detection, judging, review_imagery and analysis.
"""
