"""Spike shape (comfyload/harness/shapes/spike.py); a scenario names it with `shape: spike`."""

from comfyload.harness.shapes.spike import Spike  # noqa: F401  (Locust picks the shape class up from here)
