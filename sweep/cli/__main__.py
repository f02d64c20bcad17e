"""`python -m sweep.cli ...` is `collide ...`."""

from sweep.cli import run

run()
