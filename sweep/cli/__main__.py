"""`python -m sweep.cli ...` is `collide ...`."""

from sweep.cli.entry import run

run()
