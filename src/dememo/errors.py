"""Exceptions that name the input that is wrong and what was expected."""


class DememoError(Exception):
    """Base class for every error dememo raises on purpose."""


class DataError(DememoError):
    """A dataset file, folder or field is missing, corrupt or inconsistent."""


class ConfigError(DememoError):
    """An option, name or combination of options is not valid."""


class TrainingError(DememoError):
    """Training could not go on (for example the loss became NaN)."""


class ArtifactError(DememoError):
    """A stored artifact is missing, incomplete or fails its content hash."""
