"""Pure functions over records: the metrics model (every printed figure), SLA targets, the audit,
a ramp step's judgement, the drills' checks. May import: protocol, common. Never Locust, never I/O
beyond reading a file it is given."""
