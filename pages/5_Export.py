"""Export: hand-verified detections, training samples and evidence pictures."""
from review import ui

ui.export_page()
