"""Single source of the library version (also written into every run store)."""

__version__ = "0.1.0"
