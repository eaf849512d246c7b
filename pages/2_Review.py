"""Review: one detection at a time, before and after side by side, a verdict per key."""
from review import ui

ui.review_page()
