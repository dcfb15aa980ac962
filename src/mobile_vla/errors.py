"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class MobileVLAError(Exception):
    """A user-facing error: bad input, bad config, missing file. Message names what and where."""


class EpisodeError(MobileVLAError):
    """An episode file is unreadable or malformed.

    Attributes:
        file: the episode path.
        key: the HDF5 key or attribute at fault, if any.
    """

    def __init__(self, file, message: str, key: str | None = None):
        self.file = str(file)
        self.key = key
        where = f"{self.file}" + (f" [{key}]" if key else "")
        super().__init__(f"{where}: {message}")
        self.reason = message


class ConfigError(MobileVLAError):
    """A configuration file or override is invalid (unknown key, wrong type)."""
