"""The one exception type for user mistakes: the CLI prints its message as one line, no traceback."""

# What str.splitlines() breaks on: a key or value from a user's file may carry any of them.
LINE_BREAKS = {c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


class UserError(Exception):
    """Bad input a user can fix (unreachable server, bad workflow, bad option). Raised before
    any load starts; the CLI prints `error: <message>` and exits 2. The message is kept to one
    line even when it quotes text with line breaks (they are shown escaped)."""

    def __init__(self, message: object = "", quoted: str = ""):
        text = str(message)
        if any(c in text for c in LINE_BREAKS):
            text = "".join(LINE_BREAKS.get(c, c) for c in text)
        super().__init__(text)
        # Lines shown as they are under the one line (a dead server's log tail): escaped into the
        # message they were one unreadable line of literal "\n"s.
        self.quoted = quoted


def error_text(exc: UserError) -> str:
    """What the CLIs print to stderr: `error: <message>`, then each quoted line indented under it."""
    quoted = [f"  | {line}" for line in exc.quoted.splitlines()]
    return "\n".join([f"error: {exc}", *quoted])
