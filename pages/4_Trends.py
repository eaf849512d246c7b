"""Trends: mined area per period by review status, precision, random-sample estimates."""
from review import ui

ui.trends_page()
