"""The ``ecgwatch`` command: argument parsing and wiring of detector, training and pipeline."""

__all__ = ["__version__"]

__version__ = "0.1.0"
