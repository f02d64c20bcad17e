"""Fuzz the text parsers (criteo, table CSV/TSV, recbole) with hypothesis (issue #8).

Any input must either prepare, or raise DataError (collide's error for bad input data, exit 2
on the command line) / FileNotFoundError, exactly those types (not a plain ValueError, nor
pyarrow's ArrowInvalid or UnicodeDecodeError), whose message names the input path; a warning
fails too (pytest turns warnings into errors).

Inputs: a file of plausible rows (row count, field count, line ends, per-file dirtiness,
delimiter, split options drawn by hypothesis; the rows themselves from a drawn seed, which
keeps an example to a few draws), a dirty file's rows sometimes holding odd values ("nan",
"1e39", 2**64 + 5, " 7", random unicode, control bytes, stray quotes), then up to four
byte-level mutations (insert NUL / CR / tab / quote / invalid UTF-8 / random bytes, delete,
overwrite, truncate, repeat a line); or plain random bytes. Criteo files are also gzipped,
then sometimes truncated or corrupted.

Each fuzzer runs FUZZ_EXAMPLES inputs (COLLIDE_FUZZ_EXAMPLES, default 150), counts them and
their outcomes, prints the counts and the commonest refusals (`pytest -s` shows them) and
asserts the count.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep.datasets import CriteoSource, RecBoleSource, TableSource, prepare
from sweep.errors import DataError

FUZZ_EXAMPLES = int(os.environ.get("COLLIDE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Byte strings that break parsers: line ends, delimiters, quotes, NUL, invalid or partial UTF-8.
NASTY = [b"\r", b"\n", b"\r\n", b"\t", b",", b'"', b'""', b"\x00", b"\xff", b"\xc3",
         b"\xef\xbb\xbf", b"|",
         b" ", b"nan", b"-inf", b"1e39", b"9" * 25, b"-", b"+", "\u00e9\u2028\U0001f600".encode()]
# Characters of random text: ASCII, controls, quotes, separators, accents, a line separator, emoji.
CHARS = [chr(c) for c in range(32, 127)] * 3 + list('\t\r\n\x00\x0b"",|') \
    + list("é中\u2028\ufeff😀")


def mutate(draw: Callable, data: bytes) -> bytes:
    """Up to four random edits: insert nasty / random bytes, delete, overwrite, truncate, repeat a
    line."""
    data = bytearray(data)
    for _ in range(draw(st.sampled_from([0] * 4 + [1, 1, 2, 3, 4]))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "insert", "delete", "overwrite", "truncate",
                                     "repeat"]))
        if kind == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(NASTY), st.binary(max_size=6),
                                         st.text(max_size=6).map(str.encode)))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "overwrite" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "repeat":
            start = data.rfind(b"\n", 0, at) + 1
            stop = data.find(b"\n", at)
            data[at:at] = data[start:len(data) if stop < 0 else stop + 1]
    return bytes(data)


class Rows:
    """Seeded value maker: clean values, or (in a dirty file, one value in `one_in`) odd ones."""

    def __init__(self, seed: int, dirty: bool, one_in: int = 15):
        self.rng, self.dirty, self.one_in = random.Random(seed), dirty, one_in

    def text(self, size: int = 5) -> str:
        return "".join(self.rng.choice(CHARS) for _ in range(self.rng.randint(0, size)))

    def pick(self, clean: Callable[[], str], *odd: str) -> str:
        if self.dirty and self.rng.randrange(self.one_in) == 0:
            return self.text() if self.rng.random() < 0.3 else self.rng.choice(odd)
        return clean()

    def integer(self, lo: int, hi: int) -> str:
        return str(self.rng.randint(lo, hi)) if self.rng.random() < 0.9 else ""

    def number(self, scale: float = 1e6) -> str:
        return self.rng.choice([repr(self.rng.uniform(-scale, scale)),
                                str(self.rng.randint(-9, 99))])


def plan(draw: Callable) -> tuple[Rows, int]:
    """(value maker, row count): mostly 10 to 40 rows, sometimes 0 to 3; half the files dirty."""
    rows = Rows(draw(st.integers(0, 2**32)), dirty=draw(st.booleans()))
    # hypothesis favours the first
    return rows, draw(st.sampled_from([10, 20, 40] * 3 + [0, 1, 2, 3]))


def random_bytes_or(draw: Callable, make: Callable[[], bytes]) -> bytes:
    return draw(st.binary(max_size=300)) if draw(st.integers(0, 9)) == 9 else mutate(draw, make())


def check(run: Callable[[], object], path: Path, outcomes: Counter) -> None:
    """Run one input: success, or DataError / FileNotFoundError naming `path`; anything else
    fails."""
    outcomes["examples"] += 1
    try:
        run()
    except (ValueError, FileNotFoundError) as exc:
        if type(exc) not in (DataError, FileNotFoundError) or str(path) not in str(exc):
            raise
        outcomes["refused"] += 1
        reason = str(exc).split(str(path), 1)[1].lstrip(":0123456789/. ")
        outcomes["why: " + " ".join(reason.split()[:6])] += 1
    else:
        outcomes["prepared"] += 1


def report(name: str, outcomes: Counter) -> None:
    print(f"\nfuzz {name}: {outcomes['examples']} inputs, {outcomes['prepared']} prepared, "
          f"{outcomes['refused']} refused with a DataError naming the file; commonest refusals:")
    reasons = sorted(((k, v) for k, v in outcomes.items() if k.startswith("why: ")),
                     key=lambda kv: -kv[1])
    for why, count in reasons[:6]:
        print(f"  {count:5d}  {why[5:]}")
    assert outcomes["examples"] >= FUZZ_EXAMPLES, outcomes
    assert outcomes["prepared"] + outcomes["refused"] == outcomes["examples"]


def split_params(draw: Callable, kinds: list[str]) -> dict:
    return {"split": draw(st.sampled_from(kinds)),
            "val_fraction": draw(st.sampled_from([0.3, 0.3, 0.1])),
            "test_fraction": 0.3}


# -- criteo ---------------------------------------------------------------------------------


def criteo_line(rows: Rows) -> str:
    rng = rows.rng
    if rows.dirty and rng.randrange(30) == 0:  # a random field count
        return "\t".join(rng.choice(["", "1", "0", "ab"]) for _ in range(rng.randint(0, 45)))
    def hex_id() -> str:
        return "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(rng.randint(0, 16)))

    label = rows.pick(lambda: rng.choice("01"), "2", "", "x", "01")
    dense = [rows.pick(lambda: rows.integer(-(10**15), 10**15), "-", "1.5", "+3", "0" * 20 + "1",
                       "1" * 17)
             for _ in range(13)]
    ids = [rows.pick(hex_id, "xyz", "-1", "0x10", "1" * 17) for _ in range(26)]
    return "\t".join([label, *dense, *ids])


@st.composite
def criteo_files(draw: Callable) -> tuple[bytes, dict]:
    rows, count = plan(draw)
    # the criteo format has no "\r": a CRLF file is refused
    end = draw(st.sampled_from(["\n"] * 5 + ["\r\n"]))
    final = draw(st.booleans())
    data = random_bytes_or(draw, lambda: (end.join(criteo_line(rows) for _ in range(count))
                                          + (end if final else "")).encode())
    packing = draw(st.sampled_from(["plain"] * 8 + ["gzip"] * 4
                                   + ["gzip-truncated", "gzip-corrupt"]))
    if packing != "plain":
        data = gzip.compress(data)
        at = draw(st.integers(2, len(data) - 1))
        data = (data[:at] if packing == "gzip-truncated" else data[:at] + bytes([data[at] ^ 0x5A])
                + data[at + 1:])
    params = {"skip_malformed": draw(st.booleans()), "chunk_rows": draw(st.integers(1, 30)),
              "workers": draw(st.integers(1, 3)), **split_params(draw, ["random", "sequential"])}
    return data, params


def test_fuzz_criteo():
    outcomes: Counter = Counter()

    @FUZZ
    @given(criteo_files())
    def run(case: tuple[bytes, dict]) -> None:
        data, params = case
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "day_0"
            path.write_bytes(data)
            source = CriteoSource.from_params(path=path, progress=False, **params)
            check(lambda: prepare(source, Path(tmp) / "out"), path, outcomes)

    run()
    report("criteo", outcomes)


# -- table (CSV / TSV) ----------------------------------------------------------------------


def table_row(rows: Rows) -> dict[str, str]:
    rng = rows.rng
    return {
        "y": rows.pick(lambda: rng.choice("01"), "", "2", "1.0", "nan", "inf", "-1e400"),
        "d": rows.pick(lambda: rows.number() if rng.random() < 0.9 else "", "NaN", "-nan", "1e39",
                       "Infinity", "1e400", "1_0"),
        "c": rows.pick(lambda: rng.choice(
            [rows.integer(-(2**63), 2**63 - 1), rows.text().strip("\r\n\x00")]),
                       "", '"', 'a"b'),
        "k": rows.pick(lambda: rows.integer(-(2**63), 2**64 - 1), "+7", "-0", "007", " 7", "7.0",
                       str(2**64), str(-(2**63) - 1), "9" * 30),
        "m": rows.pick(lambda: "|".join(rng.choice(["a", "b", "é c", ""])
                                        for _ in range(rng.randint(0, 3))), "||"),
    }


@st.composite
def table_files(draw: Callable) -> tuple[bytes, str, dict]:
    rows, count = plan(draw)
    suffix = draw(st.sampled_from([".csv", ".tsv"]))
    names = draw(st.permutations(["y", "d", "c", "k", "m"]))
    line_end = draw(st.sampled_from(["\n", "\r\n"]))

    def make() -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, delimiter="," if suffix == ".csv" else "\t",
                            lineterminator=line_end)
        writer.writerow(names)
        for _ in range(count):
            fields = [table_row(rows)[n] for n in names]
            # a field too few or too many
            extra = rows.rng.choice([0] * 40 + [-1, 1]) if rows.dirty else 0
            writer.writerow(fields[:extra] if extra < 0 else fields + ["x"] * extra)
        return out.getvalue().encode()

    params = {"label_threshold": draw(st.sampled_from([None, 0.5])),
              **split_params(draw, ["random", "sequential"])}
    return random_bytes_or(draw, make), suffix, params


def test_fuzz_table():
    outcomes: Counter = Counter()

    @FUZZ
    @given(table_files())
    def run(case: tuple[bytes, str, dict]) -> None:
        data, suffix, params = case
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"data{suffix}"
            path.write_bytes(data)
            source = TableSource.from_params(path=path, label="y", dense=("d",),
                                             categorical=("c", "k"),
                                             multi_valued=("m",), **params)
            check(lambda: prepare(source, Path(tmp) / "out"), path, outcomes)

    run()
    report("table", outcomes)


# -- recbole --------------------------------------------------------------------------------


def recbole_value(rows: Rows, kind: str, keys: list[str]) -> str:
    rng = rows.rng
    if kind == "token":
        return rows.pick(lambda: rng.choice(keys), "", "a\rb", "\x00")
    if kind == "token_seq":
        return rows.pick(lambda: " ".join(rng.sample(keys, rng.randint(0, 2))), "  ")
    return rows.pick(lambda: rows.number(1e9), "nan", "inf", "1e39", "-1e400", "4,5")


def atomic_file(draw: Callable, fields: dict[str, str], required: int, keys: list[str],
                join_key: str | None = None) -> bytes:
    """An atomic file; a side file (`join_key` set) has one row per key, keys[i] on row i."""
    rows, count = plan(draw)
    optional = list(fields)[required:]
    names = list(fields)[:required] + [n for n in optional if draw(st.booleans())]
    if join_key is not None:
        count = min(count, len(keys))

    def make() -> bytes:
        lines = ["\t".join(f"{n}:{fields[n]}" for n in names)]
        for i in range(count):
            lines.append("\t".join(keys[i] if n == join_key
                                   else recbole_value(rows, fields[n], keys) for n in names))
        return ("\n".join(lines) + "\n").encode()

    return random_bytes_or(draw, make)


@st.composite
def recbole_dirs(draw: Callable) -> tuple[dict[str, bytes], dict]:
    inter = {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float",
             "ctx": "float", "tags": "token_seq", "w": "float_seq"}
    keys = [f"{kind}{i}" for kind in "ui" for i in range(20)]
    files = {"inter": atomic_file(draw, inter, 4, keys)}
    if draw(st.booleans()):
        files["user"] = atomic_file(draw,
                                    {"user_id": "token", "age": "float", "group": "token_seq"}, 1,
                                    keys[:20], join_key="user_id")
    if draw(st.booleans()):
        files["item"] = atomic_file(draw, {"item_id": "token", "genre": "token"}, 1, keys[20:],
                                    join_key="item_id")
    return files, split_params(draw, ["timestamp", "random"])


def test_fuzz_recbole():
    outcomes: Counter = Counter()

    @FUZZ
    @given(recbole_dirs())
    def run(case: tuple[dict[str, bytes], dict]) -> None:
        files, params = case
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "d"
            path.mkdir()
            for kind, data in files.items():
                (path / f"d.{kind}").write_bytes(data)
            source = RecBoleSource.from_params(path=path, **params)
            check(lambda: prepare(source, Path(tmp) / "out"), path, outcomes)

    run()
    report("recbole", outcomes)


@pytest.mark.parametrize("data", [b"", b"\n", b"\x1f\x8b", b"\x1f\x8b\x08\x00"])
def test_criteo_degenerate_files(tmp_path, data):
    path = tmp_path / "day_0"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=str(path)):
        prepare(CriteoSource.from_params(path=path, progress=False), tmp_path / "out")
