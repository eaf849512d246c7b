"""Assessment: mined area with its interval, from a stratified random sample of labelled points."""
import review.ui.assessment

review.ui.assessment.page()
