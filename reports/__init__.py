"""ComfyLoad reports: turns a run folder into report.html, charts/, summary.json and README.md,
compares two runs, and profiles workflows one at a time. Reads the run folder only; never
imports Locust (DESIGN.md, Layout)."""
