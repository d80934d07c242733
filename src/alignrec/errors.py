"""User-facing errors.

Anything a user can fix (a bad file, a bad option) raises an :class:`AlignrecError`
whose message names the file, the line or field, and the fix. The CLI prints it
without a traceback and exits non-zero; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class AlignrecError(Exception):
    """An error the user can fix; the message says where and how."""


class DataError(AlignrecError):
    """Bad or unusable input data."""


class ConfigError(AlignrecError):
    """A bad configuration file or override."""
