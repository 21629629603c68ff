"""Load shapes, one per module (as k6 keeps one executor per file), on the opening they share in
base.py. Locust uses the first shape class a locustfile holds: scenarios/shapes/<name>.py holds
one of these, and `python -m comfyload` adds the one a scenario names (`shape: <name>`)."""
