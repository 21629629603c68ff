"""Processes around a run: the `comfyload` CLI, the local ComfyUI, the fault schedule and proxy,
profiling. May import every layer below and reports."""
