"""Workload models (prompt, book, open loop): their options (options.py: the one table behind
CLI flags, env vars, scenario keys and web UI fields), the run plan and its validation (preflight.py),
and the logic that renders a book or schedules arrivals. May import: analysis, protocol, common."""
