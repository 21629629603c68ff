"""AdaptiveRamp shape (comfyload/harness/shapes/adaptive_ramp.py); a scenario names it with `shape: adaptive_ramp`."""

from comfyload.harness.shapes.adaptive_ramp import AdaptiveRamp  # noqa: F401  (Locust picks the shape class up from here)
