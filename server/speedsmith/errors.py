"""Errors the engine reports to users: each carries a message that says what to do."""


class SpeedsmithError(Exception):
    """Base class: an error with a user-facing message."""


class SourceError(SpeedsmithError):
    """The file does not parse."""


class TargetNotFound(SpeedsmithError):
    """No function with that qualified name in the file."""


class ModelError(SpeedsmithError):
    """The model is missing, corrupt or cannot be loaded."""


class Cancelled(SpeedsmithError):
    """The user cancelled the work."""
