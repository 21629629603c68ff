"""Spike shape (comfyload/shapes.py); a scenario names it with `shape: spike`."""
from comfyload.shapes import Spike  # noqa: F401  (Locust picks the shape class up from here)
