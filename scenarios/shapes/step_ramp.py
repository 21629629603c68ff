"""StepRamp shape (comfyload/harness/shapes/step_ramp.py); a scenario names it with `shape: step_ramp`."""

from comfyload.harness.shapes.step_ramp import StepRamp  # noqa: F401  (Locust picks the shape class up from here)
