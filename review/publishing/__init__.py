"""Publishing: what leaves the tool for other people.

Owns exports of verified detections and sites (GeoJSON, GeoPackage, CSV, evidence
pictures, training samples: export; Google Earth: kml), field reports with photos
(reports) and the read-only OGC API - Features server (serve).

May import: the root modules, detection, judging, review_imagery and analysis.
"""
