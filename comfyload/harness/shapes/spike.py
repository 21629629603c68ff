"""Spike: a base load, a burst of users for a while, then the base load again: does the server
recover, and how long do the burst's prompts wait?"""

from __future__ import annotations

from comfyload.harness.shapes.base import Shape, spawn_at_once


class Spike(Shape):
    """--spike-base users, then --spike-users from --spike-at for --spike-duration, then back."""

    def users_now(self, opts, harness, now):
        t = self.get_run_time()
        users = opts.spike_users if opts.spike_at <= t < opts.spike_at + opts.spike_duration else opts.spike_base
        return spawn_at_once(users)
