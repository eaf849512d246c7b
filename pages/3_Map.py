"""Map: every detection coloured by status; open one in Review."""
from review import ui

ui.map_page()
