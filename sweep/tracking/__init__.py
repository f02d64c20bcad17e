"""Everything that talks to MLflow: the store, the sweep's single writer, its journal, the reader.

- `store.py`: the one place an MLflow client is built (`connect`);
- `uri.py`: the tracking URI's default, its redacted form, and a fast reachability check;
- `writer.py`: `SweepTracker`, the sweep's single MLflow writer (retries, then the journal);
- `journal.py`: writes stored while MLflow is unreachable, replayed by `collide sync`;
- `records.py`: reading a finished (or unfinished) sweep back, one row per trial;
- `ui.py`: `collide ui`, the MLflow UI on a sweep's store, and the runs-view URLs.

Nothing here knows about Ray Tune or the frontier: the layers above hand it plain values.
MLflow is imported only where a function needs it, so importing this package is cheap.
"""

from __future__ import annotations
