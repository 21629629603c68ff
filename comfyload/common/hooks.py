"""Event hooks, the shape of Locust's `event.py`: a component says what happened, listeners
subscribe. Used by the ComfyUI client (prompts submitted and done, connection changes, status
broadcasts) and the outage monitor, so the harness wires its pieces without lambdas.

    client.events.prompt_done.add_listener(record)
    client.events.prompt_done.fire(result=result)

`fire` takes keyword arguments only, and every listener runs guarded the same way on every path:
an exception in one is logged and the others still run. A listener's bug must not lose a record or
stop the websocket receiver that fired it."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class EventHook:
    def __init__(self, name: str):
        self.name = name
        self._listeners = []

    def add_listener(self, listener):
        self._listeners.append(listener)
        return listener

    def remove_listener(self, listener) -> None:
        self._listeners.remove(listener)

    def fire(self, **kwargs) -> None:
        for listener in list(self._listeners):
            try:
                listener(**kwargs)
            except Exception:
                log.exception("a listener of %s failed", self.name)


class Events:
    """A set of named hooks, one attribute each (like Locust's `Events`)."""

    def __init__(self, *names: str):
        for name in names:
            setattr(self, name, EventHook(name))


def call_plugin(hook, attribute: str, method: str) -> None:
    """Listens on `hook` (ours or Locust's) and calls `environment.<attribute>.<method>()` where the
    plugin was made (a worker, or a port of 0, makes none)."""

    def listener(environment, **_kwargs):
        plugin = getattr(environment, attribute, None)
        if plugin is not None:
            getattr(plugin, method)()

    hook.add_listener(listener)
