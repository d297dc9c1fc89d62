"""User-facing errors: what was wrong, where (file, line, key), and what was expected."""

from __future__ import annotations

import warnings
from pathlib import Path

from desim.limits import MAX_INPUT_BYTES


class DesimError(Exception):
    """A mistake in the user's input, reported without a traceback.

    The message reads ``file:line: key: what was wrong``, with each location part present only
    when known. The CLI prints it and exits with status 2.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"

    def located(self, *, file: str | Path | None = None, line: int | None = None, key: str | None = None) -> DesimError:
        """The same error with location parts filled in where they were still unknown."""
        return DesimError(
            self.message,
            file=self.file if self.file is not None else file,
            line=self.line if self.line is not None else line,
            key=self.key if self.key is not None else key,
        )


class DesimWarning(UserWarning):
    """Something in the user's input that desim accepted but does not act on (an unmodelled key)."""


_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """A DesimWarning, once per command (see :func:`forget_warnings`): a run checks its system more than once."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(DesimWarning(message), stacklevel=2)


def forget_warnings() -> None:
    """Let :func:`warn_once` warn again (a new command starts)."""
    _WARNED.clear()


def read_text(path: str | Path, what: str) -> str:
    """The text of a user's input file (UTF-8, a byte-order mark allowed), or a DesimError saying why not.

    A file larger than ``MAX_INPUT_BYTES`` is refused, so an endless one (``/dev/zero``) cannot
    fill the memory; pipes (``<(command)``) are read like files.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise DesimError(f"the {what} is larger than {MAX_INPUT_BYTES >> 20} MiB", file=path)
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise DesimError(f"{what} not found", file=path) from None
    except IsADirectoryError:
        raise DesimError(f"this is a directory, not a {what}", file=path) from None
    except UnicodeDecodeError as error:
        raise DesimError(f"{what} is not UTF-8 text ({error.reason} at byte {error.start})", file=path) from None
    except OSError as error:
        raise DesimError(f"cannot read the {what}: {error.strerror}", file=path) from None
