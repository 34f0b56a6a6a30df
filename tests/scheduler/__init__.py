"""Unit tests of the pure scheduler, driven event by event."""
