"""Trends: mined area per period by review status, precision, random-sample estimates."""
import review.ui.trends

review.ui.trends.page()
