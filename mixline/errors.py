"""The errors mixline raises. Only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import re


class MixlineError(Exception):
    """Base class: every message names the file, line or field and says how to fix it."""

    exit_code = 1


class ConfigError(MixlineError):
    """A setting, option or recipe value is invalid."""

    exit_code = 2


class PredicateError(ConfigError):
    """A --where predicate does not parse or names an unknown column."""


class UnknownFormatError(ConfigError):
    """An input file's format cannot be recognised."""


class InputError(MixlineError):
    """An input file cannot be read at all (missing, unreadable)."""

    exit_code = 3


class NotFoundError(MixlineError):
    """A sample, run, mix or model id is not in the store."""

    exit_code = 4


class StoreError(MixlineError):
    """The store file cannot be opened, is locked, or is from a newer mixline."""

    exit_code = 5


class ReadOnlyError(StoreError):
    """A write was attempted through a read-only connection (for example `mixline sql`)."""


class LineageError(MixlineError):
    """An id or lineage edge cannot be derived deterministically."""


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def safe_message(exc: BaseException) -> str:
    """One line about an error, fit for logs and runs.error.

    A MixlineError's message is written by mixline and names only fields and files. Any
    other error (a database conversion error, say) may quote the data it choked on, so
    quoted literals are withheld: sample text must not reach a log.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, MixlineError):
        text = _QUOTED.sub("'<withheld>'", text)
    return f"{type(exc).__name__}: {text}"[:2000]
