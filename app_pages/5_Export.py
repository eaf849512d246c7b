"""Export: hand-verified detections, training samples and evidence pictures."""
import review.ui.export

review.ui.export.page()
