"""ComfyLoad: load tests for ComfyUI servers. Layers, each a package; imports point down only
(tests/test_layers.py holds the code to it):

    orchestration   CLI, the local ComfyUI process, fault drills, profiling   may import everything below, and reports
    harness         Locust: users, shapes, web UI, distributed glue         workloads, analysis, protocol, common,
                                                                            gpu_probe
    workloads       one module per workload model, options, the run plan      analysis, protocol, common
    analysis        pure functions over records: the metrics model           protocol, common (records' vocabulary)
    protocol        ComfyUI client, results, workflows, fleet, outages        common (no Locust)
    common          UserError, YAML, paths, run folder, records' vocabulary   nothing of the project

`reports` (reads run folders only) sits beside analysis; `gpu_probe` imports nothing of ComfyLoad.
"""
