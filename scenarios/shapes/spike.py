"""Spike shape (comfyload/harness/shapes.py); a scenario names it with `shape: spike`."""

from comfyload.harness.shapes import Spike  # noqa: F401  (Locust picks the shape class up from here)
