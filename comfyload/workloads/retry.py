"""Retry/backoff policy for book pages, modelled on the book app's
(COMFY_MAX_RETRIES, COMFY_RETRY_BACKOFF_SEC): what happens after each failed attempt."""

from __future__ import annotations

from dataclasses import dataclass

from comfyload.common.errors import UserError


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_s: float = 0.0
    needs_regeneration: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_s: tuple = (15.0, 45.0, 90.0)

    def delay(self, retry_number: int) -> float:
        """Backoff before retry k (1-based); the last value repeats."""
        return float(self.backoff_s[min(retry_number, len(self.backoff_s)) - 1]) if self.backoff_s else 0.0

    def decide(self, outcome: str, retries_so_far: int, validation_failures: int) -> Decision:
        """validation_error: retry once, then needs_regeneration (a bad prompt stays bad);
        oom, execution errors, timeout/lost/interrupted: retry after the backoff up to
        max_retries; a page that ends failed needs regeneration."""
        if outcome == "success":
            return Decision(retry=False)
        if outcome == "validation_error" and validation_failures > 1:
            return Decision(retry=False, needs_regeneration=True)
        if retries_so_far >= self.max_retries:
            return Decision(retry=False, needs_regeneration=True)
        return Decision(retry=True, delay_s=self.delay(retries_so_far + 1))


def parse_backoff(text: str) -> tuple:
    """ "15,45,90" -> (15.0, 45.0, 90.0)."""
    try:
        values = tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise UserError(f"--retry-backoff-sec must be a comma list of seconds >= 0 like 15,45,90, not {text!r}")
    return values
