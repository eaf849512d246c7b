"""Home page: what is in the review database and what to do next."""
from review import ui

ui.home_page()
