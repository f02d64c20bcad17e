"""`criteo`: raw Criteo Kaggle / Terabyte click logs (TSV, plain or gzip), streamed.

Each line (ending in "\n" or "\r\n") holds 40 tab-separated fields: label (0/1), I1..I13 (integers,
may be empty or
negative), C1..C26 (hex ids, may be empty). No header. Preprocessing follows the
reference DLRM (facebookresearch/dlrm, `dlrm_data_pytorch.py`):

- dense: empty -> 0, negative -> 0, then log(1 + x), computed in float64, stored float32;
- categorical: the hex string -> int64 (up to 16 digits, the 64-bit pattern, so the usual
  8-digit ids are 0 .. 2**32 - 1); an empty categorical -> `MISSING_ID` (-1), which no id
  of at most 15 hex digits can produce (only "ffffffffffffffff" would).

Lines are parsed a block at a time with `textscan` (vectorised, no Python per line). A
malformed line (wrong field count, label not 0/1, a dense value that is not an integer of
at most 16 digits, a categorical that is not 1-16 hex digits, a control byte, a byte that is
not ASCII) raises a DataError naming the file and 1-based line; with `skip_malformed` it is
skipped, counted, logged and listed in `report()`.

Also a DataError naming the file: an empty file, a truncated or corrupt gzip file (with the
line reached), a directory, and input whose every line was skipped. A missing file raises
FileNotFoundError naming it.
"""

from __future__ import annotations

import io
import logging
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sweep.datasets.base import Source, id_encoding, option
from sweep.datasets.dense import DenseTransform
from sweep.datasets.linereader import READ_ERRORS, LineBlockReader, open_maybe_gzip, read_error
from sweep.datasets.store import Chunk, FeatureSchema, Schema, SplitSpec
from sweep.datasets.textscan import (
    PAD,
    SplitLines,
    field_text,
    parse_decimal,
    parse_hex,
    split_lines,
    words_view,
)
from sweep.datasets.tokens import MISSING_ID
from sweep.errors import DataError

__all__ = ["DENSE_NAMES", "MISSING_ID", "SPARSE_NAMES", "CriteoConfig", "CriteoSource"]

log = logging.getLogger(__name__)

DENSE_NAMES = tuple(f"I{i}" for i in range(1, 14))
SPARSE_NAMES = tuple(f"C{i}" for i in range(1, 27))
NUM_FIELDS = 1 + len(DENSE_NAMES) + len(SPARSE_NAMES)  # 40
REFERENCE_DENSE = "reference DLRM: negative -> 0, then log(1 + x), applied while parsing"
MAX_EXAMPLES = 10  # skipped lines listed in the report and logged one by one


@dataclass(frozen=True)
class CriteoConfig:
    path: Path = field(metadata=option("raw Criteo TSV: Kaggle train.txt or a Terabyte day file, "
                                       "plain or gzip", path=True))
    extra_files: tuple[str, ...] = field(default=(), metadata=option(
        "more files read after PATH, in order (e.g. Terabyte days)", path=True))
    split: str = field(default="random", metadata=option(
        "'random' (seeded per row) or 'sequential' (train first, then val, test)"))
    val_fraction: float = field(default=0.1, metadata=option(
        "share of rows in the validation split"))
    test_fraction: float = field(default=0.1, metadata=option("share of rows in the test split"))
    seed: int = field(default=0, metadata=option("seed of the random split"))
    skip_malformed: bool = field(default=False, metadata=option(
        "skip (count, log, report) malformed lines instead of failing"))
    chunk_rows: int = field(default=1 << 16, metadata=option(
        "lines parsed per chunk, about (bounds memory)"))
    progress: bool = field(default=True, metadata=option(
        "show a progress bar over bytes read (only on a terminal)"))
    workers: int = field(default=2, metadata=option(
        "threads parsing blocks in parallel (results do not depend on it)"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "extra_files", tuple(str(f) for f in self.extra_files))
        if self.split not in ("random", "sequential"):
            raise DataError(f"split must be 'random' or 'sequential', got {self.split!r}")
        for name in ("chunk_rows", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(f"{name} must be an int >= 1, got {value!r}")
        # validates the fractions
        SplitSpec(self.split, self.val_fraction, self.test_fraction, self.seed)


class CriteoSource(Source):
    name = "criteo"
    Config = CriteoConfig
    # 2: a sequential split honours unequal val and test fractions (it halved their sum)
    version = 2

    def __init__(self, config: CriteoConfig):
        super().__init__(config)
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.num_lines = 0
        self.num_skipped = 0
        self.skipped_examples: list[str] = []

    def input_files(self) -> list[Path]:
        return [self.config.path, *(Path(f) for f in self.config.extra_files)]

    def params(self) -> dict:
        """The config minus the options that cannot change the output (so they do not rebuild a
        cache)."""
        return {k: v for k, v in super().params().items()
                if k not in ("chunk_rows", "progress", "workers")}

    def schema(self) -> Schema:
        return Schema(dense=DENSE_NAMES,
                      features=tuple(FeatureSchema(name) for name in SPARSE_NAMES))

    def encodings(self) -> dict[str, dict]:
        return {name: id_encoding("hex64") for name in SPARSE_NAMES}

    def split_spec(self) -> SplitSpec:
        c = self.config
        return SplitSpec(c.split, c.val_fraction, c.test_fraction, c.seed)

    def chunks(self) -> Iterator[Chunk]:
        self._reset_counts()
        for path in self.input_files():
            lines_before = self.num_lines
            yield from self._file_chunks(path)
            if self.num_lines == lines_before:
                raise DataError(f"{path}: the file is empty; expected Criteo TSV lines")
        if self.num_skipped == self.num_lines:
            files = ", ".join(str(p) for p in self.input_files())
            raise DataError(f"{files}: no usable lines: all {self.num_lines} were malformed and "
                            "skipped")
        if self.num_skipped:
            log.warning("skipped %d malformed line(s) of %d; first: %s",
                        self.num_skipped, self.num_lines, "; ".join(self.skipped_examples[:3]))

    def dense_transforms(self) -> dict[str, DenseTransform]:
        """The reference transform, applied while parsing: recorded for serving."""
        return {name: DenseTransform(name, "log1p", clip_min=0.0, reason=REFERENCE_DENSE)
                for name in DENSE_NAMES}

    def report(self) -> dict:
        return {"lines": self.num_lines, "skipped_lines": self.num_skipped,
                "skipped_examples": list(self.skipped_examples)}

    def _file_chunks(self, path: Path) -> Iterator[Chunk]:
        """Read blocks in order, parse up to `workers` of them at once, yield in order."""
        c = self.config
        show = c.progress and sys.stderr.isatty()
        with open_maybe_gzip(path) as (stream, position), \
                tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name,
                     disable=not show, leave=False) as bar, \
                ThreadPoolExecutor(max_workers=c.workers) as pool:
            reader = LineBlockReader(stream, c.chunk_rows)
            pending: deque[Future[_Parsed]] = deque()
            next_line = 1

            def finish_oldest() -> Chunk | None:
                nonlocal next_line
                parsed = pending.popleft().result()
                reader.observe(parsed.num_bytes, parsed.num_lines)
                chunk = self._accept(parsed, path, next_line)
                next_line += parsed.num_lines
                return chunk

            try:
                for block in reader:
                    pending.append(pool.submit(_parse_block, block))
                    bar.update(position() - bar.n)
                    while len(pending) > c.workers or (pending and pending[0].done()):
                        if (chunk := finish_oldest()) is not None:
                            yield chunk
            except READ_ERRORS as exc:
                reached = next_line - 1 + sum(future.result().num_lines for future in pending)
                raise read_error(path, not isinstance(stream, io.RawIOBase), reached, exc) from exc
            while pending:
                if (chunk := finish_oldest()) is not None:
                    yield chunk

    def _accept(self, parsed: _Parsed, path: Path, first_line: int) -> Chunk | None:
        """Count the block's lines, deal with its malformed ones, and make its chunk."""
        self.num_lines += parsed.num_lines
        if parsed.problems:
            if not self.config.skip_malformed:
                line, reason = parsed.problems[0]
                raise DataError(f"{path}:{first_line + line}: malformed Criteo line: {reason} "
                                "(skip_malformed=True / --skip-malformed skips such lines)")
            for line, reason in parsed.problems:
                if len(self.skipped_examples) < MAX_EXAMPLES:
                    example = f"{path}:{first_line + line}: {reason}"
                    self.skipped_examples.append(example)
                    log.warning("skipping malformed line %s", example)
            self.num_skipped += len(parsed.problems)
        if len(parsed.labels) == 0:
            return None
        sparse = {name: parsed.ids[i] for i, name in enumerate(SPARSE_NAMES)}
        return Chunk(labels=parsed.labels, dense=parsed.dense, sparse=sparse)


@dataclass
class _Parsed:
    labels: np.ndarray  # float32 [k]
    dense: np.ndarray  # float32 [k, 13]
    ids: np.ndarray  # int64 [26, k]: one contiguous row per feature
    num_lines: int
    num_bytes: int
    problems: list[tuple[int, str]]  # (0-based line in the block, what is wrong), in line order


def _parse_block(block: np.ndarray) -> _Parsed:
    """Parse one block of whole lines (pure, so blocks can be parsed in parallel threads)."""
    lines = split_lines(block, NUM_FIELDS)
    words = words_view(block)
    ends, lengths = lines.ends, lines.lengths  # [k, 40]
    # "\r\n" line ends: the last field ends earlier
    crlf = (lengths[:, -1] > 0) & (block[ends[:, -1] - 1] == 13)
    if crlf.any():
        ends[crlf, -1] -= 1
        lengths[crlf, -1] -= 1
    label_byte = block[ends[:, 0] - 1]
    label_ok = (lengths[:, 0] == 1) & ((label_byte == ord("0")) | (label_byte == ord("1")))
    dense_ends, dense_lengths = np.ascontiguousarray(ends[:, 1:14]), np.ascontiguousarray(
        lengths[:, 1:14])
    value, negative, dense_ok = parse_decimal(block, words, dense_ends, dense_lengths)  # [k, 13]
    value[negative] = 0
    dense = np.log1p(value.astype(np.float64)).astype(np.float32)
    hex_ends, hex_lengths = np.ascontiguousarray(ends[:, 14:]), np.ascontiguousarray(
        lengths[:, 14:])
    ids, hex_ok = parse_hex(words, hex_ends, hex_lengths)  # [k, 26]
    ids[hex_lengths == 0] = MISSING_ID
    row_ok = label_ok & dense_ok.all(axis=1) & hex_ok.all(axis=1)
    labels = (label_byte == ord("1")).astype(np.float32)
    problems: list[tuple[int, str]] = []
    if len(lines.bad) or not row_ok.all():
        problems = _problems(block, lines, label_ok, dense_ok, hex_ok, row_ok)
        labels, dense, ids = labels[row_ok], dense[row_ok], ids[row_ok]
    return _Parsed(labels=labels, dense=dense, ids=np.ascontiguousarray(ids.T),
                   num_lines=lines.num_lines,
                   num_bytes=len(block) - PAD, problems=problems)


def _problems(block: np.ndarray, lines: SplitLines, label_ok: np.ndarray, dense_ok: np.ndarray,
              hex_ok: np.ndarray, row_ok: np.ndarray) -> list[tuple[int, str]]:
    """(0-based line in the block, what is wrong) for every malformed line, in line order."""
    problems = []
    for line, found in zip(lines.bad.tolist(), lines.bad_fields.tolist(), strict=True):
        what = "has a control character" if found < 0 else f"has {found} tab-separated fields"
        problems.append((line, f"{what}, expected {NUM_FIELDS}"))
    for row in np.flatnonzero(~row_ok).tolist():
        ends, lengths = lines.ends[row], lines.lengths[row]
        if not label_ok[row]:
            reason = f"label must be 0 or 1, got {field_text(block, ends[0], lengths[0])!r}"
        elif not dense_ok[row].all():
            j = int(np.flatnonzero(~dense_ok[row])[0])
            text = field_text(block, ends[1 + j], lengths[1 + j])
            reason = f"{DENSE_NAMES[j]} must be an integer of at most 16 digits, got {text!r}"
        else:
            j = int(np.flatnonzero(~hex_ok[row])[0])
            text = field_text(block, ends[14 + j], lengths[14 + j])
            reason = f"{SPARSE_NAMES[j]} must be 1 to 16 hex digits or empty, got {text!r}"
        problems.append((int(lines.good[row]), reason))
    return sorted(problems)
