from __future__ import annotations

import re

import numpy as np
import pytest

from sweep.datasets.textscan import PAD, parse_decimal, parse_hex, split_lines, words_view

ALPHABET = "0123456789abcdefABCDEF-gG xz/:@`\x80\xb0\xe6\xff"


def block_of(lines: list[list[str]]) -> np.ndarray:
    text = "".join("\t".join(fields) + "\n" for fields in lines)
    return np.concatenate([np.zeros(PAD, np.uint8),
                           np.frombuffer(text.encode("latin-1"), np.uint8)])


def random_fields(rng: np.random.Generator, rows: int, cols: int,
                  valid_share: float) -> list[list[str]]:
    out = []
    for _ in range(rows):
        row = []
        for _ in range(cols):
            length = int(rng.integers(0, 19))
            pool = "0123456789abcdefABCDEF" if rng.random() < valid_share else ALPHABET
            row.append("".join(pool[i] for i in rng.integers(0, len(pool), length)))
        out.append(row)
    return out


def test_parse_hex_matches_python_on_random_fields():
    rng = np.random.default_rng(0)
    lines = random_fields(rng, 400, 6, valid_share=0.7)
    block = block_of(lines)
    split = split_lines(block, 6)
    assert split.num_lines == 400 and len(split.bad) == 0
    values, ok = parse_hex(words_view(block), split.ends, split.lengths)
    for r, row in enumerate(lines):
        for c, text in enumerate(row):
            valid = len(text) <= 16 and re.fullmatch(r"[0-9a-fA-F]*", text) is not None
            assert ok[r, c] == valid, text
            if valid:
                expected = int(text, 16) if text else 0
                assert values[r, c] == np.array(expected, dtype=np.uint64).view(np.int64), text


def test_parse_decimal_matches_python_on_random_fields():
    rng = np.random.default_rng(1)
    lines = random_fields(rng, 300, 5, valid_share=0.3)
    for row in lines[:100]:  # plenty of well-formed signed numbers too
        row[0] = str(int(rng.integers(-10**15, 10**16)))
        row[1] = "-" + row[1] if row[1] else row[1]
    block = block_of(lines)
    split = split_lines(block, 5)
    values, negative, ok = parse_decimal(block, words_view(block), split.ends, split.lengths)
    for r, row in enumerate(lines):
        for c, text in enumerate(row):
            valid = text == "" or re.fullmatch(r"-?[0-9]{1,16}", text) is not None
            assert ok[r, c] == valid, text
            if valid and text:
                assert values[r, c] == abs(int(text)) and negative[r, c] == text.startswith(
                    "-"), text


def test_split_lines_reports_bad_lines_and_keeps_good_ones():
    block = block_of([["a", "b", "c"], ["a", "b"], ["a", "b", "c", "d"], ["x\x01", "y", "z"],
                      ["1", "2", "3"]])
    split = split_lines(block, 3)
    assert split.num_lines == 5
    assert split.good.tolist() == [0, 4] and split.bad.tolist() == [1, 2, 3]
    assert split.bad_fields.tolist() == [2, 4, -1]
    assert split.lengths.tolist() == [[1, 1, 1], [1, 1, 1]]
    assert bytes(block[split.ends[1, 2] - 1:split.ends[1, 2]]) == b"3"


@pytest.mark.parametrize("text", ["", "\n", "\n\n"])
def test_split_lines_on_empty_lines(text):
    block = np.concatenate([np.zeros(PAD, np.uint8), np.frombuffer(text.encode(), np.uint8)])
    split = split_lines(block, 3)
    assert split.num_lines == text.count("\n") and len(split.good) == 0
    assert split.bad_fields.tolist() == [1] * text.count("\n")
