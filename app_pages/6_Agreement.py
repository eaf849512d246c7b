"""Agreement: how far reviewers agree, whose verdicts stood, which reasons are disputed."""
import review.ui.agreement

review.ui.agreement.page()
