"""The ComfyUI protocol, usable from a plain script like Requests' Session: ComfyClient (POST
/prompt, websocket, /history, /view) -> PromptResult, workflows and their per-request parameters,
a fleet of servers behind one pick(), the outage monitor. May import: common. Never Locust."""
