"""Pinned (strategy, seed, raw id, num_rows) -> row values: the bundle format's contract.

A bundle stores a hash-based mapper as its params and hash keys only, and a learned one as
its explicit (id, row) pairs plus a hash fallback for every other id; serving recomputes
the rows with mappers/hashing.py. So the hashing primitive (splitmix64 of id + key), the key
derivation (derive_key(seed, stream)) and the range reduction (multiply-shift on the high
32 bits, the low 32 bits for qr's remainder) ARE the format.

CHANGING ANY VALUE BELOW SILENTLY REMAPS EVERY ID OF EVERY EXPORTED BUNDLE. If a change of
the hashing is intended, it needs a new bundle format_version (and a migration), not an
update of these tables. The values were computed once from the code and written down
literally; never regenerate them to make a failure go away.
"""

from __future__ import annotations

import numpy as np
import pytest

from mappers import get_mapper, load_bundle, save_bundle
from mappers.hashing import derive_key

I64 = np.iinfo(np.int64)
# raw ids: around zero, a mid-size id, +-(2**40 + 7), and the int64 extremes
IDS = np.array([0, -1, 1, 12345, 2**40 + 7, -(2**40 + 7), I64.max, I64.min], dtype=np.int64)
NO_VOCAB = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

# derive_key(seed, stream) for streams 0 and 1: the `hash_keys` array of a bundle
PINNED_KEYS = {
    0: (0xA706DD2F4D197E6F, 0xB382A305F4414F5E),
    1: (0x46B73E79F0C37C00, 0x374327C63D0CC8A6),
    42: (0x153F14992AD95647, 0xAE3DA22DF86C45A5),
}

# get_mapper("hash", num_rows=n, seed=s).transform(IDS), keyed by (s, n)
PINNED_HASH = {
    (0, 1): [0, 0, 0, 0, 0, 0, 0, 0],
    (0, 7): [4, 2, 6, 4, 6, 2, 4, 1],
    (0, 1000): [705, 320, 904, 616, 899, 335, 648, 253],
    (0, 2**20): [739755, 336158, 948925, 645943, 943700, 351847, 679801, 265943],
    (0, 2**31 - 1): [1515018810, 688453187, 1943399660, 1322892997, 1932697631, 720583939,
                     1392234365, 544653128],
    (1, 1): [0, 0, 0, 0, 0, 0, 0, 0],
    (1, 7): [5, 6, 3, 3, 6, 1, 3, 4],
    (1, 1000): [831, 875, 552, 570, 876, 217, 525, 606],
    (1, 2**20): [871713, 917564, 579049, 598101, 918881, 228557, 550651, 635626],
    (1, 2**31 - 1): [1785270114, 1879171879, 1185893851, 1224912245, 1881868385, 468085695,
                     1127733342, 1301763793],
    (42, 1): [0, 0, 0, 0, 0, 0, 0, 0],
    (42, 7): [0, 5, 4, 4, 1, 3, 6, 3],
    (42, 1000): [48, 725, 599, 647, 158, 430, 877, 561],
    (42, 2**20): [50908, 761154, 628784, 679226, 166452, 451848, 919907, 588447],
    (42, 2**31 - 1): [104261172, 1558844291, 1287750920, 1391055872, 340895390, 925386231,
                      1883969664, 1205140071],
}

# get_mapper("double_hash", num_rows=n, seed=s).transform(IDS): (table 0 rows, table 1 rows)
PINNED_DOUBLE_HASH = {
    (0, 7): ([2, 1, 3, 2, 3, 1, 2, 1], [1, 1, 2, 0, 2, 2, 1, 2]),
    (0, 1000): ([352, 160, 452, 308, 449, 167, 324, 126],
                [284, 191, 447, 145, 395, 453, 183, 421]),
    (0, 2**20): ([369877, 168079, 474462, 322971, 471850, 175923, 339900, 132971],
                 [298279, 201307, 469028, 152198, 415171, 475695, 192406, 441595]),
    (0, 2**31 - 1): ([757509405, 344226593, 971699830, 661446499, 966348816, 360291969,
                      696117183, 272326564],
                     [610875810, 412278215, 960570413, 311703226, 850271621, 974224355,
                      394048935, 904387823]),
    (1, 7): ([3, 3, 2, 2, 3, 0, 2, 2], [2, 0, 2, 0, 2, 0, 0, 0]),
    (1, 1000): ([415, 437, 276, 285, 438, 108, 262, 303], [341, 21, 372, 22, 337, 81, 91, 121]),
    (1, 2**20): ([435856, 458782, 289524, 299050, 459440, 114278, 275325, 317813],
                 [358562, 22571, 390346, 23416, 353702, 85690, 95752, 127543]),
    (1, 2**31 - 1): ([892635057, 939585940, 592946926, 612456123, 940934193, 234042847,
                      563866671, 650881897],
                     [734336230, 46227402, 799430257, 47956530, 724383119, 175494533,
                      196100896, 261210052]),
    (42, 7): ([0, 2, 2, 2, 0, 1, 3, 2], [2, 0, 1, 2, 0, 2, 1, 2]),
    (42, 1000): ([24, 362, 299, 323, 79, 215, 438, 280], [337, 7, 249, 422, 26, 355, 269, 405]),
    (42, 2**20): ([25454, 380577, 314392, 339613, 83226, 225924, 459953, 294223],
                  [353380, 7914, 261667, 443277, 27753, 372772, 282190, 425232]),
    (42, 2**31 - 1): ([52130586, 779422146, 643875460, 695527936, 170447695, 462693116,
                       941984832, 602570036],
                      [723723487, 16209546, 535894608, 907832580, 56839237, 763437638,
                       577926227, 870876209]),
}

# get_mapper("qr", num_rows=n, seed=s) (default collisions n // 2).transform(IDS):
# (quotient rows, remainder rows)
PINNED_QR = {
    (0, 7): ([2, 1, 3, 2, 3, 1, 2, 1], [2, 1, 2, 2, 1, 1, 0, 1]),
    (0, 1000): ([352, 160, 452, 308, 449, 167, 324, 126],
                [366, 273, 497, 498, 221, 307, 127, 299]),
    (0, 2**20): ([369877, 168079, 474462, 322971, 471850, 175923, 339900, 132971],
                 [384052, 286560, 521823, 522931, 232343, 322340, 133333, 313949]),
    (0, 2**31 - 1): ([757509405, 344226593, 971699830, 661446499, 966348816, 360291969,
                      696117183, 272326564],
                     [786538871, 586876650, 1068693982, 1070962991, 475838483, 660153888,
                      273067078, 642967898]),
    (1, 7): ([3, 3, 2, 2, 3, 0, 2, 2], [0, 1, 2, 0, 0, 0, 2, 1]),
    (1, 1000): ([415, 437, 276, 285, 438, 108, 262, 303], [31, 223, 492, 62, 88, 12, 461, 281]),
    (1, 2**20): ([435856, 458782, 289524, 299050, 459440, 114278, 275325, 317813],
                 [33145, 234182, 515961, 65943, 93076, 12714, 484309, 295131]),
    (1, 2**31 - 1): ([892635057, 939585940, 592946926, 612456123, 940934193, 234042847,
                      563866671, 650881897],
                     [67881914, 479605007, 1056689164, 135053152, 190619875, 26040014,
                      991866198, 604428666]),
    (42, 7): ([0, 2, 2, 2, 0, 1, 3, 2], [0, 0, 1, 2, 1, 2, 2, 2]),
    (42, 1000): ([24, 362, 299, 323, 79, 215, 438, 280], [29, 19, 305, 343, 171, 376, 340, 424]),
    (42, 2**20): ([25454, 380577, 314392, 339613, 83226, 225924, 459953, 294223],
                  [30774, 20140, 320298, 359694, 179763, 394408, 356860, 445533]),
    (42, 2**31 - 1): ([52130586, 779422146, 643875460, 695527936, 170447695, 462693116,
                       941984832, 602570036],
                      [63026364, 41247615, 655971647, 736654319, 368155794, 807747764,
                       730849706, 912451632]),
}

# Learned mappers fitted on ids 1000..1999 (counts 1000..1: hottest first); none of IDS is
# in that vocabulary, so each takes the hash fallback into the strategy's fallback range:
# full (unseen="hash") [0, 1000), frequency [20, 100) (20 hot rows), embedding [0, 100),
# frequency_embedding [10, 100) (10 hot rows).
LEARNED_PARAMS = {
    "full": {"unseen": "hash"},
    "frequency": {"num_rows": 100, "hot_fraction": 0.2},
    "embedding": {"num_rows": 100},
    "frequency_embedding": {"num_rows": 100, "hot_fraction": 0.1},
}
PINNED_LEARNED_FALLBACK = {
    ("full", 0): [705, 320, 904, 616, 899, 335, 648, 253],
    ("full", 7): [787, 809, 513, 320, 278, 675, 429, 559],
    ("frequency", 0): [76, 45, 92, 69, 91, 46, 71, 40],
    ("frequency", 7): [82, 84, 61, 45, 42, 74, 54, 64],
    ("embedding", 0): [70, 32, 90, 61, 89, 33, 64, 25],
    ("embedding", 7): [78, 80, 51, 32, 27, 67, 42, 55],
    ("frequency_embedding", 0): [73, 38, 91, 65, 90, 40, 68, 32],
    ("frequency_embedding", 7): [80, 82, 56, 38, 35, 70, 48, 60],
}


def _through_bundle(mapper, path):
    """The mapper as serving sees it: saved to a bundle and loaded back."""
    save_bundle(mapper, path)
    return load_bundle(path)


@pytest.mark.parametrize("seed", sorted(PINNED_KEYS))
def test_hash_keys_are_pinned(seed: int) -> None:
    assert tuple(int(derive_key(seed, stream)) for stream in (0, 1)) == PINNED_KEYS[seed]


@pytest.mark.parametrize(("seed", "num_rows"), sorted(PINNED_HASH))
def test_hash_rows_are_pinned(seed: int, num_rows: int, tmp_path) -> None:
    mapper = get_mapper("hash", num_rows=num_rows, seed=seed).fit(*NO_VOCAB)
    assert mapper.transform(IDS).tolist() == PINNED_HASH[seed, num_rows]
    assert _through_bundle(mapper, tmp_path).transform(IDS).tolist() == PINNED_HASH[seed, num_rows]


@pytest.mark.parametrize(
    ("name", "seed", "num_rows"),
    [("double_hash", *key) for key in sorted(PINNED_DOUBLE_HASH)]
    + [("qr", *key) for key in sorted(PINNED_QR)],
)
def test_two_table_rows_are_pinned(name: str, seed: int, num_rows: int, tmp_path) -> None:
    pinned = (PINNED_DOUBLE_HASH if name == "double_hash" else PINNED_QR)[seed, num_rows]
    mapper = get_mapper(name, num_rows=num_rows, seed=seed).fit(*NO_VOCAB)
    for served in (mapper, _through_bundle(mapper, tmp_path)):
        assert tuple(rows.tolist() for rows in served.transform(IDS)) == pinned


@pytest.mark.parametrize(("name", "seed"), sorted(PINNED_LEARNED_FALLBACK))
def test_learned_fallback_rows_are_pinned(name: str, seed: int, tmp_path) -> None:
    vocab = np.arange(1000, 2000, dtype=np.int64)
    embeddings = np.stack([np.sin(vocab), np.cos(vocab)], axis=1)
    mapper = get_mapper(name, seed=seed, **LEARNED_PARAMS[name]).fit(
        vocab, 2000 - vocab, embeddings)
    pinned = PINNED_LEARNED_FALLBACK[name, seed]
    assert mapper.transform(IDS).tolist() == pinned
    assert mapper.num_unseen_ == IDS.size  # every pinned id went through the fallback
    assert _through_bundle(mapper, tmp_path).transform(IDS).tolist() == pinned
