"""Madoguchi desktop client (PySide6). Thin: every screen calls engine functions, long work runs
through :mod:`desktop.ops`."""
