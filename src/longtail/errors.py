"""Library errors. The CLI maps every `LongtailError` to a clear message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class LongtailError(Exception):
    """Base class of every error the library raises on purpose (bad input, bad configuration)."""

    exit_code = 1


class DataError(LongtailError):
    """Malformed input data; names the file, the row and the field so a person can fix it.

    ``row`` is the 1-based data row (the header is not counted; in a CSV file the row is on
    line ``row + 1``). ``row=None`` means the whole file (e.g. a missing column).
    """

    exit_code = 2

    def __init__(self, file: str | Path, row: int | None, field: str | None, message: str) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        self.message = message
        where = [f"file {self.file}"]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}")


class ConfigError(LongtailError):
    """A bad option or hyper-parameter value."""

    exit_code = 2
