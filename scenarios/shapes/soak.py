"""Soak shape (comfyload/harness/shapes/soak.py); a scenario names it with `shape: soak`."""

from comfyload.harness.shapes.soak import Soak  # noqa: F401  (Locust picks the shape class up from here)
