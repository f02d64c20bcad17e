"""`mch` (mappers/mch.py): admission and eviction by hand on tiny streams, the hashed region, the
changed rows the trainer resets, determinism, and the frozen map's bundle."""

from __future__ import annotations

import numpy as np
import pytest

from mappers import get_mapper, load_bundle, save_bundle
from mappers.bundle import describe_arrays

VOCAB = np.arange(1, 21, dtype=np.int64), np.ones(20, dtype=np.int64)


def _mch(**params):
    # 10 rows: a region of 1 row (row 9), a pool of 9 rows; admitted at a count of 2
    return get_mapper("mch", **{"num_rows": 10, "hash_fraction": 0.1, "decay": 0.5, **params}
                      ).fit(*VOCAB)


def _feed(mapper, *ids):
    mapper.observe(np.array(ids, dtype=np.int64))
    return mapper.update().tolist()


def test_an_empty_pool_hashes_everything_into_the_region():
    mapper = _mch()
    assert mapper.pool_rows == 9 and mapper.transform(np.arange(100)).tolist() == [9] * 100
    assert mapper.nbytes == 12 * 9 + 32 and mapper.pool_use == 0  # the pool's capacity


def test_ids_seen_often_enough_take_free_rows_hottest_first():
    mapper = _mch()
    # 5 three times, 3 twice, 7 once: 5 and 3 reach the admission count of 2
    assert _feed(mapper, 5, 3, 5, 7, 3, 5) == [0, 1]
    assert mapper.transform(np.array([5, 3, 7])).tolist() == [0, 1, 9]
    # 7 again: its count decayed to 0.5, plus 1 = 1.5, still below 2; twice more: 0.75 + 2
    assert _feed(mapper, 7) == []
    assert _feed(mapper, 7, 7) == [2]
    assert mapper.transform(np.array([7])).tolist() == [2]
    assert mapper.stats["admissions"] == 3 and mapper.stats["evictions"] == 0
    assert mapper.nbytes == 12 * 9 + 32  # the whole pool, held or not


def test_lfu_evicts_the_smallest_decayed_count_when_beaten():
    mapper = _mch(num_rows=3, hash_fraction=0.34)  # a pool of 2 rows, region row 2
    assert _feed(mapper, 1, 1, 1, 1, 2, 2) == [0, 1]  # counts 1: 4, 2: 2
    # decayed: 1: 2, 2: 1; 3 seen 3 times (3 > 1): takes row 1 from 2; 4 seen twice (2 = 2, no)
    assert _feed(mapper, 3, 3, 3, 4, 4) == [1]
    assert mapper.transform(np.array([1, 2, 3, 4])).tolist() == [0, 2, 1, 2]
    assert mapper.stats["evictions"] == 1
    # 2 is a candidate again with its count: decayed 0.5 + 3 sightings beats 4's
    assert _feed(mapper, 2, 2, 2) == [0]  # 1 decayed to 1: the weakest now
    assert mapper.transform(np.array([1, 2, 3])).tolist() == [2, 0, 1]


def test_lru_evicts_the_id_seen_longest_ago_and_never_one_seen_now():
    mapper = _mch(num_rows=3, hash_fraction=0.34, eviction="lru")
    assert _feed(mapper, 1, 1, 2, 2) == [0, 1]
    assert _feed(mapper, 1, 9, 9) == [1]  # 2 was not seen in this interval; 1 was
    assert mapper.transform(np.array([1, 2, 9])).tolist() == [0, 2, 1]
    assert _feed(mapper, 1, 9, 2, 2) == []  # both pool ids seen now: nobody is evicted


@pytest.mark.parametrize("forget_below, admitted", [(0.6, []), (0.0, [0])])
def test_forgotten_candidates_start_over(forget_below, admitted):
    mapper = _mch(forget_below=forget_below, admit_count=1.2)
    _feed(mapper, 4)  # count 1 < 1.2
    _feed(mapper)  # decays to 0.5: below 0.6, forgotten
    # forgotten: 1 again (< 1.2); remembered: 0.25 + 1 = 1.25, admitted
    assert _feed(mapper, 4) == admitted


def test_same_seed_same_map_and_the_frozen_map_round_trips(tmp_path):
    stream = np.random.default_rng(0).zipf(1.3, 5000).astype(np.int64)

    def run(seed):
        mapper = get_mapper("mch", num_rows=40, seed=seed).fit(*VOCAB)
        for chunk in np.array_split(stream, 10):
            mapper.observe(chunk)
            mapper.update()
        return mapper

    a, b = run(3), run(3)
    query = np.arange(-50, 3000, dtype=np.int64)
    np.testing.assert_array_equal(a.transform(query), b.transform(query))
    assert not np.array_equal(a.transform(query), run(4).transform(query))
    assert a.pool_use == 1.0 and a.stats["evictions"] > 0
    save_bundle(a, tmp_path / "b")
    frozen = load_bundle(tmp_path / "b")
    np.testing.assert_array_equal(frozen.transform(query), a.transform(query))
    np.testing.assert_array_equal(frozen.transform(query), frozen.transform(query))
    assert frozen.nbytes == a.nbytes == 12 * 36 + 32 and a.keys_.size == 36


def test_a_bundle_whose_pool_rows_reach_the_region_is_refused():
    mapper = _mch()
    _feed(mapper, 5, 5)
    manifest, arrays = mapper.to_bundle()
    arrays["rows"] = np.array([9], dtype=np.int32)
    manifest["arrays"] = describe_arrays(arrays)
    with pytest.raises(ValueError, match=r"has its pool in rows \[0, 9\)"):
        type(mapper).from_bundle(manifest, arrays)
