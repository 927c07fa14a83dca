"""One error family: every user error is a `TflotteryError`, whose message names the problem and the fix.

The command line prints any of them as one line and exits with code 2; anything else is a bug
and keeps its traceback. This module imports nothing, so the CLI can catch these errors
before TensorFlow loads.
"""


class TflotteryError(Exception):
    """A user error: bad input, a file that cannot be used, something missing here."""


class ConfigError(TflotteryError, ValueError):
    """A configuration value or flag is invalid; the message names the field and the fix."""


class TicketError(TflotteryError, ValueError):
    """A ticket cannot be used as it is; the message names the file and the problem."""


class ConversionError(TicketError):
    """A ticket cannot be converted to TFLite, or its file does not run in LiteRT."""


class DataUnavailableError(TflotteryError, RuntimeError):
    """The dataset cannot be had here; the message says how to get it."""


class RunError(TflotteryError, RuntimeError):
    """A run directory cannot be used: not a run, written by another layout, or in use by another process."""


class ModelError(TflotteryError, TypeError):
    """A model cannot be used: Keras 3, subclassed, no prunable layer, or outputs that do not fit the data."""


class StorageError(TflotteryError, OSError):
    """A folder or file cannot be used safely: a planted link, a file that is not a plain file, a file
    system that cannot do what the write needs; the message names the path."""


class DamagedError(StorageError, ValueError):
    """A file of a run or ticket is cut short or altered: not valid JSON, or not the bytes its unit's manifest
    lists; the message names the file and what to do (a run retrains the unit: `tflottery find` or a worker)."""
