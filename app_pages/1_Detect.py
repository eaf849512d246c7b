"""Detect: run a published detector over a GeoTIFF tile."""
import review.ui.detect

review.ui.detect.page()
