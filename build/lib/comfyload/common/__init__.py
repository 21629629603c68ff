"""Shared vocabulary of every layer: UserError (one line, exit 2), YAML reading, the checkout's
paths, the run folder and its NDJSON writer. Imports nothing of the project."""
