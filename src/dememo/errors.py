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


class StorageError(DememoError):
    """An output location could not be written (disk full, read-only, no permission): names the path.

    What was being written is left as it was (writes are atomic), so the same command run again
    once the cause is fixed resumes where it stopped."""
