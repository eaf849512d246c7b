"""Mining review: detect illegal mining in satellite tiles and confirm it by eye."""

__version__ = "0.1.0"
