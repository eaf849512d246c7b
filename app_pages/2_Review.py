"""Review: one detection at a time, before and after side by side, a verdict per key."""
import review.ui.review

review.ui.review.page()
