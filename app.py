"""The dashboard: Home, Detect, Review, Map, Trends and Export in the sidebar."""
import review.ui.common
import review.ui.home

review.ui.common.navigation(review.ui.home.page).run()
