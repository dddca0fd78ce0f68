"""Exceptions that core raises for problems a user or operator can act on."""


class DigitsError(Exception):
    """Base class for every error core raises on purpose."""


class InvalidInput(DigitsError, ValueError):
    """An image or audio input that cannot be turned into model features."""


class DataNotFound(DigitsError, FileNotFoundError):
    """A dataset file is missing; the message says where we looked and how to get it."""


class CorruptData(DigitsError, ValueError):
    """A dataset file exists but its content is not what the format promises."""


class CheckpointError(DigitsError, ValueError):
    """A weights file that is truncated, foreign, unsafe or for another architecture."""


class DownloadError(DigitsError, RuntimeError):
    """A download failed or its checksum did not match."""
