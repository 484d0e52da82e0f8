"""User-facing errors.

Every mistake a user can make (unknown name, bad config key, missing data, corrupt or hostile file)
raises a :class:`GenzooError` whose message is one sentence naming the bad value and the valid
choices. The CLI prints that sentence and exits non-zero, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class GenzooError(Exception):
    """An error caused by user input; its message is meant to be shown as is."""


class ConfigError(GenzooError, ValueError):
    """A configuration key or value is not valid."""


class CheckpointError(GenzooError):
    """A checkpoint is missing, corrupt, of the wrong shape, or not in a safe format."""


class DataError(GenzooError):
    """A dataset name is unknown or its files are missing."""


class TrainingDiverged(GenzooError):
    """The loss or the gradients became NaN or Inf during training."""


class TrainingInterrupted(GenzooError):
    """SIGINT or SIGTERM stopped training; a checkpoint was saved first."""


class StorageError(GenzooError, OSError):
    """A run directory cannot be written (disk full, read-only, no permission) or is in use by
    another training process; the previous checkpoint is left intact."""


class GenzooWarning(UserWarning):
    """Something the user should know that does not stop the command (a skipped unreadable file,
    a prompt word the model does not know); ``genzoo`` prints it as one line."""


def choices(values: Iterable[str]) -> str:
    """Format valid choices for an error message: ``'a', 'b' or 'c'``."""
    vals = [repr(v) for v in sorted(values)]
    if not vals:
        return "(none)"
    if len(vals) == 1:
        return vals[0]
    return ", ".join(vals[:-1]) + " or " + vals[-1]
