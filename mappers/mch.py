"""`mch`: managed collisions, the industry's online baseline (TorchRec's MCH modules; the dynamic
tables of Monolith and DeepRec): a fixed pool of rows that ids win and lose during training.

A compression gives the feature num_rows rows (as for every strategy). The last
H = max(1, round(hash_fraction * num_rows)) rows are a shared hashed region; the first
P = num_rows - H rows are the pool. An id with a pool row maps to it; every other id (not yet
admitted, evicted, or never seen) is hashed into the region with the mapper's seeded hash.

The pool changes only in `update()`, which the trainer calls every `remap_every` training
batches with the ids `observe()` saw since the last one:

1. every count decays: counts of pool ids and of candidates (seen ids without a row) are
   multiplied by `decay`, then the new sightings are added (one per occurrence);
2. admission: a candidate whose decayed count is at least `admit_count` is eligible; eligible
   ids, by count descending (ties: smaller id first), first take the free rows (lowest first);
3. eviction, once the pool is full: under "lfu" (default) an eligible id takes the row of the
   pool id with the smallest decayed count (ties: lower row first) when its own count is larger;
   under "lru" it takes the row of the pool id seen longest ago (ties: smaller count, then lower
   row) when that id was not seen since the last update. An evicted id becomes a candidate
   again, with its count.
4. `update()` returns the rows whose id changed: the trainer re-initialises each such row and
   resets its optimizer state, since the row now stands for another id.

Candidates whose decayed count falls below `forget_below` are dropped, so the state holds about
as many ids as were seen recently, not every id ever seen. `fit` (on the training vocabulary)
starts an empty pool: ids earn rows in training, as in TorchRec, so a map that never trained is
the hash into the region. After training the map is frozen: it is stored and served as a
learned map, the pool ids with their rows, and the region as its fallback range, so loaders
need nothing new. Its bytes (`nbytes`) are those of a full pool, 12 per pool row + 32, known
before training: serving provisions the whole pool. The counters of the last training are kept in
`stats`: admissions, evictions, updates, the pool's use, and the share of observed values the
hashed region served.
"""

from __future__ import annotations

import numpy as np

from .base import ID_BYTES, LEARNED_HEADER_BYTES, check_choice, check_float, check_int
from .learned import LearnedMapper, LearnedRows

EVICTIONS = ("lfu", "lru")


class MCHMapper(LearnedMapper):
    """A pool of rows won by counts during training and a hashed region (module docstring)."""

    name = "mch"
    report_rank = 8
    # besides hash: against the paper's best at the same budget
    compared_with = ("frequency_embedding",)
    online = True
    needs_single_valued = True

    def __init__(
        self,
        *,
        num_rows: int,
        hash_fraction: float = 0.1,
        admit_count: float = 2.0,
        eviction: str = "lfu",
        decay: float = 0.9,
        remap_every: int = 16,
        forget_below: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__(num_rows=num_rows, seed=seed)
        self.hash_fraction = check_float("hash_fraction", hash_fraction, 0.0, 1.0, low_open=True)
        self.admit_count = check_float("admit_count", admit_count, 0.0, 1e18, low_open=True)
        self.eviction = check_choice("eviction", eviction, EVICTIONS)
        self.decay = check_float("decay", decay, 0.0, 1.0, low_open=True)
        self.remap_every = check_int("remap_every", remap_every, 1)
        self.forget_below = check_float("forget_below", forget_below, 0.0, 1e18, low_open=False)
        self._params = {"num_rows": self.num_rows, "hash_fraction": self.hash_fraction,
                        "admit_count": self.admit_count, "eviction": self.eviction,
                        "decay": self.decay, "remap_every": self.remap_every,
                        "forget_below": self.forget_below, "seed": self.seed}
        region = min(self.num_rows, max(1, round(self.hash_fraction * self.num_rows)))
        self.pool_rows = self.num_rows - region

    # -- the learned map's hooks: an empty pool, the region as the fallback
    def _learn_rows(self, ids: np.ndarray, counts: np.ndarray,
                    embeddings: np.ndarray | None) -> LearnedRows:
        region = (self.pool_rows, self.num_rows)
        return LearnedRows(rows=self.fallback_rows(ids, region), fallback=region,
                           num_rows=self.num_rows, oov_row=self.num_rows - 1)

    def explicit_cap(self) -> int | None:
        return 0  # no id has a pool row before training

    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        super()._fit(ids, counts, embeddings)
        self.reset_pool()

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(arrays)
        layout = [int(v) for v in self.layout_]
        if layout[:3] != [self.num_rows, self.pool_rows, self.num_rows] or (
                self.rows_.size and int(self.rows_.max()) >= self.pool_rows):
            top = int(self.rows_.max()) if self.rows_.size else None
            raise ValueError(f"bundle learned state is inconsistent: an mch map of "
                             f"{self.num_rows} rows has its pool in rows [0, {self.pool_rows}) and "
                             f"its hashed region in [{self.pool_rows}, {self.num_rows}), got "
                             f"layout {layout} and pool rows up to {top}")
        self.reset_pool()
        self._owner[self.rows_] = self.keys_
        self._occupied[self.rows_] = True

    # -- the online pool
    def reset_pool(self) -> None:
        """Every row free, no candidate, counters zero (what `fit` does after the vocabulary)."""
        p = self.pool_rows
        self._owner = np.zeros(p, dtype=np.int64)  # the id holding each pool row
        self._occupied = np.zeros(p, dtype=bool)
        self._count = np.zeros(p, dtype=np.float64)  # decayed count of each row's id
        self._last = np.zeros(p, dtype=np.int64)  # the update that last saw each row's id
        self._cand_ids = np.zeros(0, dtype=np.int64)  # sorted
        self._cand_counts = np.zeros(0, dtype=np.float64)
        self._pending: list[np.ndarray] = []
        self.stats = {"admissions": 0, "evictions": 0, "updates": 0, "observed_values": 0,
                      "region_values": 0}

    def observe(self, ids: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Note a training batch's raw ids (int64, any shape), for the next `update`; `rows`:
        their rows, when the caller has mapped them already (else they are looked up)."""
        self._check_fitted("observe")
        flat = np.asarray(ids, dtype=np.int64).reshape(-1)
        self._pending.append(flat.copy())
        self.stats["observed_values"] += int(flat.size)
        region = (np.asarray(rows).reshape(-1) >= self.pool_rows) if rows is not None \
            else self._index.lookup(flat) < 0
        self.stats["region_values"] += int(region.sum())

    def update(self) -> np.ndarray:
        """Apply the sightings since the last update (module docstring, steps 1-3); returns the
        sorted rows whose id changed (int64)."""
        self._check_fitted("update")
        seen = np.concatenate(self._pending) if self._pending else np.zeros(0, dtype=np.int64)
        self._pending = []
        self.stats["updates"] += 1
        now = self.stats["updates"]
        ids, counts = np.unique(seen, return_counts=True)
        # 1. decay, then add the sightings: to the pool ids' rows, and to the candidates
        self._count *= self.decay
        self._cand_counts *= self.decay
        rows = self._index.lookup(ids)
        hit = rows >= 0
        self._count[rows[hit]] += counts[hit]
        self._last[rows[hit]] = now
        merged = np.concatenate([self._cand_ids, ids[~hit]])
        weights = np.concatenate([self._cand_counts, counts[~hit].astype(np.float64)])
        cand_ids, inverse = np.unique(merged, return_inverse=True)
        cand_counts = np.bincount(inverse, weights=weights, minlength=cand_ids.size)
        # 2. the eligible candidates, hottest first, take the free rows
        order = np.lexsort((cand_ids, -cand_counts))
        eligible = order[cand_counts[order] >= self.admit_count]
        free = np.flatnonzero(~self._occupied)
        take = min(eligible.size, free.size)
        self._admit(free[:take], eligible[:take], cand_ids, cand_counts, now)
        # 3. then evict, while an eligible id beats the weakest pool id (rows given just now are
        # not victims)
        rest, given = eligible[take:], [free[:take]]
        evicted_ids, evicted_counts, winners, rows_lost = [], [], [], []
        if rest.size and self.pool_rows:
            if self.eviction == "lfu":
                victims = np.lexsort((np.arange(self.pool_rows), self._count))
            else:
                victims = np.lexsort((np.arange(self.pool_rows), self._count, self._last))
            victims = victims[np.isin(victims, free[:take], invert=True)]
            for cand, row in zip(rest, victims, strict=False):
                beats = (cand_counts[cand] > self._count[row] if self.eviction == "lfu"
                         else self._last[row] < now)
                if not beats:
                    break
                evicted_ids.append(self._owner[row])
                evicted_counts.append(self._count[row])
                winners.append(cand)
                rows_lost.append(row)
            self._admit(np.asarray(rows_lost, dtype=np.int64),
                        np.asarray(winners, dtype=np.int64), cand_ids, cand_counts, now)
            given.append(np.asarray(rows_lost, dtype=np.int64))
        changed = np.concatenate(given)
        chosen = np.concatenate([eligible[:take], np.asarray(winners, dtype=np.int64)])
        keep = np.ones(cand_ids.size, dtype=bool)
        keep[chosen] = False
        cand_ids = np.concatenate([cand_ids[keep], np.asarray(evicted_ids, dtype=np.int64)])
        cand_counts = np.concatenate([cand_counts[keep], np.asarray(evicted_counts)])
        kept = cand_counts >= self.forget_below
        order = np.argsort(cand_ids[kept], kind="stable")
        self._cand_ids, self._cand_counts = cand_ids[kept][order], cand_counts[kept][order]
        self.stats["admissions"] += int(changed.size)
        self.stats["evictions"] += len(evicted_ids)
        if changed.size:
            held = np.flatnonzero(self._occupied)
            order = np.argsort(self._owner[held], kind="stable")
            self._set_state(keys=self._owner[held][order], rows=held[order].astype(np.int32),
                            layout=self.layout_)
        return np.sort(changed)

    def _admit(self, rows: np.ndarray, chosen: np.ndarray, cand_ids: np.ndarray,
               cand_counts: np.ndarray, now: int) -> None:
        self._owner[rows] = cand_ids[chosen]
        self._occupied[rows] = True
        self._count[rows] = cand_counts[chosen]
        self._last[rows] = now

    @property
    def nbytes(self) -> int:
        """The map at its capacity: 12 bytes for each pool row's id, held or not, + 32. Serving
        must provision the whole pool, and the pool fills as the model trains, so the bytes are
        known before training and do not change with it."""
        self._check_fitted("nbytes")
        return ID_BYTES * self.pool_rows + LEARNED_HEADER_BYTES

    @property
    def pool_use(self) -> float:
        """The share of pool rows held by an id."""
        return float(self._occupied.mean()) if self.pool_rows else 0.0
