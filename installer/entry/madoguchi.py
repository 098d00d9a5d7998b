"""Frozen entry point of the ``madoguchi`` command line (engine/cli.py:main)."""
import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
