"""Vectorised scanning of delimited text blocks: field offsets, decimal ints and hex ids.

Python cannot parse tens of millions of lines one by one at speed, so a block of complete
lines is handled as one uint8 array. Delimiters are found with one comparison, each field
is described by its end offset and length, and numbers are decoded eight characters at a
time ("SWAR"): the eight bytes that end a field are read as one big-endian uint64 (an
unaligned strided view, no copy), the bytes before the field start are masked off, and
shifts, masks and multiplies turn the ASCII digits into a number for every field at once.

A block is `PAD` padding bytes followed by complete lines, each ending in b"\\n"; the
padding lets every field read the eight (or sixteen) bytes before its end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PAD", "SplitLines", "field_text", "parse_decimal", "parse_hex", "split_lines",
           "words_view"]

PAD = 16  # padding bytes in front of every block
MAX_DECIMAL_DIGITS = 16  # two words; 10**16 - 1 < 2**63
MAX_HEX_DIGITS = 16  # two words: a full 64-bit pattern

_ONES = 0x0101010101010101
_HIGH = np.uint64(0x8080808080808080)
# _MASKS[c]: the low c bytes set, i.e. the last c characters of a big-endian word
_MASKS = np.array([(1 << (8 * c)) - 1 for c in range(9)], dtype=np.uint64)


@dataclass(frozen=True)
class SplitLines:
    """Fields of the well-formed lines of a block (F fields per line)."""

    ends: np.ndarray  # int64 [k, F]: offset one past the last byte of each field
    lengths: np.ndarray  # int64 [k, F]
    good: np.ndarray  # int64 [k]: 0-based line index (within the block) of each row
    bad: np.ndarray  # int64 [b]: 0-based line index of each line with a wrong field count
    bad_fields: np.ndarray  # int64 [b]: fields found on each bad line (-1: control byte)
    num_lines: int


def words_view(block: np.ndarray) -> np.ndarray:
    """words[i] = bytes i..i+7 of `block` as one little-endian uint64 (a strided view, no copy).

    Gathered words are byte-swapped, so the first character becomes the most significant byte.
    """
    return np.ndarray(shape=(len(block) - 7,), dtype="<u8", buffer=block, strides=(1,))


def split_lines(block: np.ndarray, num_fields: int, sep: int = 9) -> SplitLines:
    """Find every field of every line in `block` (PAD bytes, then lines ending in b"\\n").

    A line whose field count is not `num_fields`, or that holds a control byte below
    b"\\x0b" other than `sep`, is reported in `bad` instead of `good`.
    """
    assert 0 <= sep <= 9, sep  # a separator must sort below b"\n" for the scan below
    data = block[PAD:]
    pos = np.flatnonzero(data < 11)  # every separator and newline (and stray control bytes)
    kinds = data[pos]
    line_ends = np.flatnonzero(kinds == 10)  # index into pos of each newline
    num_lines = len(line_ends)
    counts = np.diff(line_ends, prepend=-1)  # delimiters per line, its newline included
    ok = counts == num_fields
    stray = None
    if num_lines and (sep != 9 or kinds.min() < 9):
        stray = np.unique(np.searchsorted(line_ends,
                                          np.flatnonzero((kinds != sep) & (kinds != 10))))
        ok[stray] = False
    lengths = np.diff(pos, prepend=-1)
    lengths -= 1
    pos += PAD
    if ok.all():
        return SplitLines(ends=pos.reshape(num_lines, num_fields),
                          lengths=lengths.reshape(num_lines, num_fields),
                          good=np.arange(num_lines, dtype=np.int64),
                          bad=np.zeros(0, dtype=np.int64),
                          bad_fields=np.zeros(0, dtype=np.int64), num_lines=num_lines)
    keep = np.repeat(ok, counts)
    bad = np.flatnonzero(~ok)
    bad_fields = counts[bad].astype(np.int64)
    if stray is not None:
        bad_fields[np.isin(bad, stray)] = -1
    return SplitLines(ends=pos[keep].reshape(-1, num_fields),
                      lengths=lengths[keep].reshape(-1, num_fields),
                      good=np.flatnonzero(ok), bad=bad, bad_fields=bad_fields, num_lines=num_lines)


def field_text(block: np.ndarray, end: int, length: int, limit: int = 40) -> str:
    """The text of one field, for error messages (shortened to `limit` characters)."""
    raw = bytes(block[end - length:end]).decode("utf-8", errors="replace")
    return raw if len(raw) <= limit else raw[:limit] + "..."


def _masked_words(words: np.ndarray, ends: np.ndarray, digits: np.ndarray, word: int) -> tuple:
    """Word `word` (0: the last eight bytes) of each field, big-endian, bytes before the field
    zeroed.

    Returns (x, high): x uint64, high = the 0x80 bit of every byte inside the field.
    """
    count = np.clip(digits - 8 * word, 0, 8) if word else np.minimum(digits, 8)
    mask = _MASKS[count]
    x = words[ends - 8 * (word + 1)]
    x.byteswap(inplace=True)
    x &= mask
    mask &= _HIGH
    return x, mask


def _in_range(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per byte of x: high bit set where lo <= byte <= hi (exact for bytes < 0x80, see below)."""
    above = x + np.uint64((0x80 - lo) * _ONES)
    over = x + np.uint64((0x7F - hi) * _ONES)
    np.invert(over, out=over)
    above &= over
    return above


# Validity of a byte >= 0x80: the lowest such byte of a word gets no carry from below and fails
# both range tests, so a word holding one is rejected without an explicit ASCII test.


def _decimal_word(x: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of up to eight ASCII digits (right-aligned in x; x is consumed) and validity."""
    digit = _in_range(x, 0x30, 0x39)
    digit &= high
    ok = digit == high
    x &= np.uint64(0x0F * _ONES)  # '0'..'9' -> 0..9; zeroed bytes stay 0
    t = x >> np.uint64(8)
    t *= np.uint64(10)
    x += t
    x &= np.uint64(0x00FF00FF00FF00FF)
    np.right_shift(x, np.uint64(16), out=t)
    t *= np.uint64(100)
    x += t
    x &= np.uint64(0x0000FFFF0000FFFF)
    np.right_shift(x, np.uint64(32), out=t)
    t *= np.uint64(10000)
    x += t
    x &= np.uint64(0xFFFFFFFF)
    return x, ok


def _hex_word(x: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value of up to eight ASCII hex digits (either case, right-aligned; x is consumed) and
    validity."""
    valid = _in_range(x, 0x30, 0x39)
    lower = x | np.uint64(0x20 * _ONES)
    valid |= _in_range(lower, 0x61, 0x66)
    valid &= high
    ok = valid == high
    t = lower
    np.bitwise_and(x, np.uint64(0x40 * _ONES), out=t)  # letters: +9 on the low nibble
    t >>= np.uint64(6)
    t *= np.uint64(9)
    x &= np.uint64(0x0F * _ONES)
    x += t
    for shift, keep in ((4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF), (16, 0xFFFFFFFF)):
        np.right_shift(x, np.uint64(shift), out=t)
        x |= t
        x &= np.uint64(keep)
    return x, ok


def parse_decimal(block: np.ndarray, words: np.ndarray, ends: np.ndarray,
                  lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed decimal ints of fields (any shape): (abs value int64, negative, valid).

    Empty fields are 0 and valid. Valid: an optional '-' then 1 to 16 ASCII digits.
    """
    negative = block[ends - np.maximum(lengths, 1)] == ord("-")
    negative &= lengths > 0
    digits = lengths - negative
    ok = digits <= MAX_DECIMAL_DIGITS
    ok &= ~(negative & (digits == 0))
    x, high = _masked_words(words, ends, digits, 0)
    value, ok0 = _decimal_word(x, high)
    ok &= ok0
    long = digits > 8
    if long.any():
        x, high = _masked_words(words, ends[long], np.minimum(digits[long], MAX_DECIMAL_DIGITS), 1)
        upper, ok1 = _decimal_word(x, high)
        value[long] += upper * np.uint64(10**8)
        ok[long] &= ok1
    return value.view(np.int64), negative, ok


def parse_hex(words: np.ndarray, ends: np.ndarray,
              lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hex ids of fields (any shape) as the int64 bit pattern of up to 16 digits, and validity.

    Empty fields decode to 0 and are valid; the caller decides what an empty id means.
    """
    x, high = _masked_words(words, ends, lengths, 0)
    value, ok = _hex_word(x, high)
    ok &= lengths <= MAX_HEX_DIGITS
    long = lengths > 8
    if long.any():
        x, high = _masked_words(words, ends[long], np.minimum(lengths[long], MAX_HEX_DIGITS), 1)
        upper, ok1 = _hex_word(x, high)
        value[long] |= upper << np.uint64(32)
        ok[long] &= ok1
    return value.view(np.int64), ok
