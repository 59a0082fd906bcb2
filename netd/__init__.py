"""netd: a container networking daemon."""

__version__ = "0.1.0"
