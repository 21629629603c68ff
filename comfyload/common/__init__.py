"""Shared vocabulary of every layer: UserError (one line, exit 2), YAML reading, the checkout's
paths, the run folder, its NDJSON writer and the records' vocabulary (records.py). Imports nothing
of the project."""
