"""`python -m sweep.cli ...` is `collide ...`."""

from sweep.cli.entry import main

raise SystemExit(main())
