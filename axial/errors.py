"""One exception type for user-facing errors, so the CLI can print them cleanly (no traceback)."""


class AxialError(Exception):
    """A problem with the user's input or environment, with a message that says what and where."""


class DataError(AxialError):
    """A malformed record: the message names file, line/row and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        loc = ""
        if path is not None:
            loc = f"{path}:{line}" if line is not None else str(path)
        parts = [p for p in (loc, f"field '{field}'" if field else "", message) if p]
        super().__init__(": ".join(parts))
        self.path, self.line, self.field, self.reason = path, line, field, message
