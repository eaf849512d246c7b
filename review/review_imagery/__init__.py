"""Review imagery: the before and after pictures a person judges a detection by.

Owns chips cut from stored scenes (chips), the cache of prepared chips on disk
(chip_cache), imagery prepared for the Review page from scenes or STAC (preparation),
Esri Wayback releases (wayback), chips prepared ahead of the reviewer (lookahead) and
scenes registered from a user's own tiles (scenes).

May import: the root modules, detection and judging.
"""
