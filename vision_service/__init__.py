"""Detection service that measures the quality of every image it sees."""

__version__ = "0.1.0"
