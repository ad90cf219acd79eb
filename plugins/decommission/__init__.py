"""Decommission retired care systems into R7 e-Arkiv."""

__version__ = "0.1.0"
