"""Helpers shared by the tests, the benchmarks and the scripts — never shipped (not in the wheel,
not in the installer bundle): synthesized counter speech (:mod:`devkit.audiogen`), kill -9 crash
runs (:mod:`devkit.crashkit`), fuzz targets (:mod:`devkit.fuzz_targets`) and a throw-away
PostgreSQL server on loopback (:mod:`devkit.pg`). The pytest fixtures built on them stay in
``tests/``."""
