"""The Locust integration: users and the per-process harness, shapes, the web UI tabs, the
distributed glue, exact stats, the GPU probe's adapter. May import: workloads, analysis,
protocol, common, gpu_probe."""
