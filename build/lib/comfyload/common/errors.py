"""The one exception type for user mistakes: the CLI prints its message as one line, no traceback."""


class UserError(Exception):
    """Bad input a user can fix (unreachable server, bad workflow, bad option). Raised before
    any load starts; the CLI prints `error: <message>` and exits 2."""
