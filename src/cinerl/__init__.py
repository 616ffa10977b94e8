"""CineRL: one prompt to a coherent multi-scene film."""

__version__ = "0.1.0"
