"""Soak shape (comfyload/harness/shapes.py); a scenario names it with `shape: soak`."""

from comfyload.harness.shapes import Soak  # noqa: F401  (Locust picks the shape class up from here)
