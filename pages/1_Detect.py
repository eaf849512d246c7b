"""Detect: run a published detector over a GeoTIFF tile."""
from review import ui

ui.detect_page()
