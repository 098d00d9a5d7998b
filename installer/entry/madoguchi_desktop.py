"""Frozen entry point of ``madoguchi-desktop`` (desktop/app.py:main)."""
import sys

from desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
