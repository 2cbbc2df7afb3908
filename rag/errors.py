"""The one base exception of the product; the command line prints it as a one-line message."""


class GQAError(Exception):
    """A user-facing error: the message names the value, the rule and the fix."""


class ConfigError(GQAError):
    """Bad configuration or usage (exit code 1)."""


class IndexError_(GQAError):
    """The published index is missing, incompatible or unreadable."""


class StoreError(GQAError):
    """The database file is missing, damaged, empty or not this product's; the message names it and the fix."""
