"""Models: trained change classifiers, their curves against the published model, and what they see."""
import review.ui.models

review.ui.models.page()
