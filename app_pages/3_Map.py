"""Map: every detection coloured by status; open one in Review."""
import review.ui.map

review.ui.map.page()
