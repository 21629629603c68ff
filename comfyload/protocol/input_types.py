"""Literal input values checked against the numeric types /object_info declares (INT, FLOAT,
with min/max), the way ComfyUI's own validation converts them: a value the server would
refuse for every prompt is named before load starts, not found in 100 % validation errors."""

from __future__ import annotations

import math

CONVERT = {"INT": int, "FLOAT": float}


def type_problem(name: str, value, declaration) -> str | None:
    """Why `value` does not fit the declared input, or None when it does (or is not checked)."""
    if not isinstance(declaration, (list, tuple)) or not declaration or isinstance(value, list):
        return None  # a link to another node's output, or an undeclared shape
    kind = declaration[0]
    rules = declaration[1] if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
    if isinstance(kind, str) and kind in CONVERT:
        if isinstance(value, bool) or isinstance(value, (dict, type(None))):
            return f"{name}={value!r} must be {kind}"
        try:
            number = CONVERT[kind](value)
        except (TypeError, ValueError, OverflowError):
            return f"{name}={value!r} must be {kind}"
        if isinstance(number, float) and not math.isfinite(number):
            return f"{name}={value!r} must be a finite {kind}"
        low, high = rules.get("min"), rules.get("max")
        if isinstance(low, (int, float)) and number < low:
            return f"{name}={value!r} is below the server's minimum {low}"
        if isinstance(high, (int, float)) and number > high:
            return f"{name}={value!r} is above the server's maximum {high}"
    return None
