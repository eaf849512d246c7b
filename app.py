"""Home page: what is in the review database and what to do next."""
import review.ui.home

review.ui.home.page()
