"""Every error authorbot raises on purpose. One line each: subject, problem, fix."""


class AuthorbotError(Exception):
    """Base of the errors the CLI reports as one line instead of a traceback."""


class DownloadError(AuthorbotError):
    """A catalog or book could not be fetched from the mirror."""


class BookNotFound(DownloadError):
    """The mirror has no text for this book in any layout (never retried)."""


class CatalogError(AuthorbotError):
    """The catalog is missing or malformed, or the author matches no book."""


class ExtractionError(AuthorbotError):
    """A text holds no dialogue that authorbot can find."""


class InvalidDataError(AuthorbotError, ValueError):
    """A table or file does not hold what its schema says."""


class ConfigError(AuthorbotError, ValueError):
    """A setting is out of range or inconsistent."""


class StorageError(AuthorbotError, OSError):
    """A file could not be written (disk full, no permission); the previous version is unchanged."""


class ModelNotFound(AuthorbotError, FileNotFoundError):
    """A model or tokenizer could not be loaded from the hub or a directory."""
