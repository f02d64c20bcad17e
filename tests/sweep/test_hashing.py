"""The prepare-time hashing is part of the prepared format: the same input must give the same
raw ids and splits on every machine and every collide version. These values are pinned."""

from __future__ import annotations

import numpy as np

from sweep.hashing import mix64, stable_hash_strings


def test_mix64_is_pinned():
    x = np.array([0, 1, 2**40, 2**64 - 1], dtype=np.uint64)
    assert mix64(x, 0).tolist() == [16294208416658607535, 10451216379200822465, 2296115805719413641,
                                    16490336266968443936]
    assert mix64(x, 7).tolist() == [14232521865600346940, 9648886400068060533, 13586112462805857756,
                                    4638043754431676516]
    # int64 ids by their bit pattern
    assert mix64(x.view(np.int64), 7).tolist() == mix64(x, 7).tolist()


def test_string_ids_are_pinned_and_cost_no_fixed_width_copy():
    pinned = [-5426141060434712860, 3405396810240292928, -6825715184599929273, 3394012004367669963]
    assert stable_hash_strings(["", "a", "user 196", "é"]).tolist() == pinned
    long = "x" * 3_000_000  # one long value among many used to allocate rows x 3 MB
    ids = stable_hash_strings([long] + [str(i) for i in range(200_000)])
    assert len(ids) == 200_001 and ids[0] != ids[1]
    assert stable_hash_strings([]).dtype == np.int64
