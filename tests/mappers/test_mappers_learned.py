"""full / frequency and the learned-mapper machinery: unseen ids, caps, nbytes."""

from __future__ import annotations

import numpy as np
import pytest
from mapper_testdata import CONTRACT_PARAMS, VOCAB, fitted, zipf_vocab

from mappers import UnseenIdError, collision_stats, get_mapper
from mappers.base import ID_BYTES, LEARNED_HEADER_BYTES

LEARNED = ["full", "frequency", "embedding", "frequency_embedding"]
CAPPABLE = ["frequency", "embedding", "frequency_embedding"]
# floor(hot_fraction 0.3 * 37 rows): all frequency stores under unseen="hash"
HOT_FREQUENCY_IDS = 11
UNSEEN = np.array([1, 2, 3, 4, 5], dtype=np.int64)  # not in VOCAB (ids are random int64)
assert not np.isin(UNSEEN, VOCAB[0]).any()


def test_full_row_is_position_in_sorted_vocabulary() -> None:
    ids, counts, _ = VOCAB
    mapper = get_mapper("full").fit(ids, counts)
    vocab_size = np.unique(ids).size
    np.testing.assert_array_equal(mapper.transform(np.unique(ids)), np.arange(vocab_size))
    assert mapper.table_sizes == (vocab_size + 1,)
    np.testing.assert_array_equal(mapper.transform(UNSEEN), np.full(5, vocab_size))  # oov row
    assert mapper.num_unseen_ == 5


def test_full_on_empty_vocabulary_has_only_the_oov_row() -> None:
    mapper = get_mapper("full").fit(np.empty(0, np.int64), np.empty(0, np.int64))
    assert mapper.table_sizes == (1,)
    np.testing.assert_array_equal(mapper.transform(UNSEEN), np.zeros(5))


def test_frequency_hot_ids_have_rows_of_their_own() -> None:
    ids, counts, _ = VOCAB
    mapper = get_mapper("frequency", num_rows=40, hot_fraction=0.25).fit(ids, counts)
    order = np.lexsort((ids, -counts))
    hot, cold = ids[order[:10]], ids[order[10:]]
    np.testing.assert_array_equal(mapper.transform(hot), np.arange(10))  # hottest first
    cold_rows = mapper.transform(cold)
    assert cold_rows.min() >= 10 and cold_rows.max() < 40  # tail rows only
    assert np.all(mapper.transform(UNSEEN) >= 10)


def test_frequency_collides_less_than_hash_on_zipf_data() -> None:
    ids, counts, _ = zipf_vocab(5000, 2, seed=3)
    rates = {
        name: collision_stats(mapper.fit(ids, counts).transform(ids), ids, counts)["collision_rate"]
        for name, mapper in {
            "hash": get_mapper("hash", num_rows=500),
            "frequency": get_mapper("frequency", num_rows=500, hot_fraction=0.5),
        }.items()
    }
    assert rates["frequency"] < 0.5 * rates["hash"], rates


def test_frequency_all_hot_with_more_ids_than_rows_shares_all_rows() -> None:
    ids, counts, _ = VOCAB  # 300 ids into 20 rows, all hot
    mapper = get_mapper("frequency", num_rows=20, hot_fraction=1.0).fit(ids, counts)
    rows = mapper.transform(ids)
    order = np.lexsort((ids, -counts))
    np.testing.assert_array_equal(rows[order[:20]], np.arange(20))
    assert set(np.unique(rows[order[20:]])) <= set(range(20))
    assert np.unique(rows[order[20:]]).size > 10  # spread over all rows, not crammed


def test_frequency_cap_stores_only_hot_ids_and_gives_the_same_rows() -> None:
    ids, counts, _ = VOCAB
    query = np.concatenate([ids, UNSEEN])
    full = get_mapper("frequency", num_rows=40, hot_fraction=0.25).fit(ids, counts)
    capped = get_mapper("frequency", num_rows=40, hot_fraction=0.25, max_explicit_ids=10)
    capped.fit(ids, counts)
    np.testing.assert_array_equal(full.transform(query), capped.transform(query))
    assert capped.nbytes == 10 * ID_BYTES + LEARNED_HEADER_BYTES
    assert capped.num_unseen_ == ids.size - 10 + 5  # cold ids count as unseen under a cap


@pytest.mark.parametrize("name", LEARNED)
def test_learned_nbytes_follows_the_per_id_formula(name: str) -> None:
    stored = HOT_FREQUENCY_IDS if name == "frequency" else VOCAB[0].size
    assert fitted(name).nbytes == ID_BYTES * stored + LEARNED_HEADER_BYTES
    if name == "frequency":  # storing the tail too is needed only to tell seen from unseen
        assert fitted(name,
                      unseen="oov_row").nbytes == ID_BYTES * VOCAB[0].size + LEARNED_HEADER_BYTES


@pytest.mark.parametrize("name", CAPPABLE)
@pytest.mark.parametrize("cap", [0, 7, 10_000])
def test_max_explicit_ids_bounds_nbytes(name: str, cap: int) -> None:
    mapper = fitted(name, max_explicit_ids=cap)
    assert mapper.nbytes <= ID_BYTES * cap + LEARNED_HEADER_BYTES
    limit = HOT_FREQUENCY_IDS if name == "frequency" else VOCAB[0].size
    assert mapper.nbytes == ID_BYTES * min(cap, limit) + LEARNED_HEADER_BYTES
    ids, counts, _ = VOCAB
    hottest = ids[np.lexsort((ids, -counts))[: min(cap, ids.size)]]
    np.testing.assert_array_equal(
        mapper.transform(hottest), fitted(name).transform(hottest)
    )  # the stored ids keep their learned rows


@pytest.mark.parametrize("name", CAPPABLE)
def test_unseen_hash_policy_hashes_into_the_rows_and_counts(name: str) -> None:
    mapper = fitted(name)
    rows = mapper.transform(UNSEEN)
    assert np.all((rows >= 0) & (rows < 37)) and np.unique(rows).size > 1
    ids, counts, _ = VOCAB
    hottest_three = ids[np.lexsort((ids, -counts))[:3]]  # stored by every strategy
    mapper.transform(np.concatenate([UNSEEN, hottest_three]))
    assert mapper.num_unseen_ == 10  # cumulative
    mapper.fit(*VOCAB)
    assert mapper.num_unseen_ == 0  # reset by fit


@pytest.mark.parametrize("name", CAPPABLE)
def test_unseen_oov_row_is_the_last_row_of_the_budget(name: str) -> None:
    mapper = fitted(name, unseen="oov_row")
    np.testing.assert_array_equal(mapper.transform(UNSEEN), np.full(5, 36))
    assert mapper.transform(VOCAB[0]).max() < 36  # training ids never use the oov row
    assert mapper.num_unseen_ == 5 and mapper.table_sizes == (37,)


@pytest.mark.parametrize("name", LEARNED)
def test_unseen_error_policy_raises_naming_count_and_examples(name: str) -> None:
    mapper = fitted(name, unseen="error")
    mapper.transform(VOCAB[0])
    query = np.concatenate([VOCAB[0][:4], UNSEEN[:3]])
    with pytest.raises(
        UnseenIdError, match=r"3 of 7 ids are not in the fitted vocabulary .*\[1, 2, 3\]"
    ):
        mapper.transform(query)
    with pytest.raises(KeyError):
        mapper.transform(UNSEEN)
    assert mapper.num_unseen_ == 8


def test_full_unseen_hash_policy_uses_training_rows() -> None:
    mapper = fitted("full", unseen="hash")
    rows = mapper.transform(UNSEEN)
    assert np.all(rows < VOCAB[0].size) and mapper.num_unseen_ == 5


@pytest.mark.parametrize("name", CAPPABLE)
def test_cap_requires_hash_policy(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"max_explicit_ids=5 requires unseen='hash'.*got unseen='oov_row'"
    ):
        get_mapper(name, num_rows=10, unseen="oov_row", max_explicit_ids=5)


def test_learned_param_errors_name_param_value_and_allowed() -> None:
    with pytest.raises(
        ValueError, match=r"unseen must be one of 'hash', 'oov_row', 'error', got 'drop'"
    ):
        get_mapper("frequency", num_rows=10, unseen="drop")
    with pytest.raises(ValueError, match=r"hot_fraction must be a number in \(0\.0, 1\.0\], got 0"):
        get_mapper("frequency", num_rows=10, hot_fraction=0)
    with pytest.raises(ValueError, match=r"max_explicit_ids must be None or an int >= 0, got -1"):
        get_mapper("embedding", num_rows=10, max_explicit_ids=-1)
    with pytest.raises(ValueError, match=r"num_rows must be an int in \[2, 2147483647\], got 1"):
        get_mapper("embedding", num_rows=1, unseen="oov_row")
    with pytest.raises(ValueError, match=r"lam must be a number in \[0\.0, 1000000\.0\], got -1"):
        get_mapper("frequency_embedding", num_rows=10, lam=-1)
    with pytest.raises(ValueError, match=r"count_weighted must be a bool, got 'yes'"):
        get_mapper("embedding", num_rows=10, count_weighted="yes")


@pytest.mark.parametrize("name", ["embedding", "frequency_embedding"])
def test_embedding_strategies_need_probe_embeddings(name: str) -> None:
    with pytest.raises(
        ValueError, match=rf"{name} needs probe embeddings: call fit\(ids, counts, embeddings\)"
    ):
        get_mapper(name, num_rows=10).fit(*VOCAB[:2])


def test_fit_validates_the_vocabulary() -> None:
    mapper = get_mapper("frequency", num_rows=10)
    with pytest.raises(ValueError, match=r"ids must be unique, got 1 duplicates, e\.g\. \[7\]"):
        mapper.fit(np.array([7, 7, 8]), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"counts must be integers aligned with ids"):
        mapper.fit(np.array([1, 2]), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"counts must be >= 0, got min -1"):
        mapper.fit(np.array([1, 2]), np.array([1, -1]))
    with pytest.raises(
        ValueError, match=r"ids must be an integer array \(int64 raw ids\), got dtype float64"
    ):
        mapper.fit(np.array([1.5]), np.ones(1, dtype=np.int64))
    with pytest.raises(
        ValueError, match=r"embeddings must be a float array \[V, d\] aligned with ids \(V=2\)"
    ):
        mapper.fit(np.array([1, 2]), np.ones(2, dtype=np.int64), np.ones((3, 4)))


@pytest.mark.parametrize("name", ["full", "embedding", "frequency_embedding"])
def test_sorted_and_shuffled_vocabularies_fit_the_same(name: str) -> None:
    """A sorted vocabulary skips the reordering copies; the mapper still owns its keys."""
    ids, counts, embeddings = VOCAB
    order = np.argsort(ids)
    sorted_ids = ids[order]
    shuffled = fitted(name)
    mapper = get_mapper(name, **CONTRACT_PARAMS[name]).fit(
        sorted_ids, counts[order], embeddings[order]
    )
    np.testing.assert_array_equal(mapper.transform(ids), shuffled.transform(ids))
    sorted_ids[:] = 0  # the caller reuses its array
    np.testing.assert_array_equal(mapper.to_bundle()[1]["keys"], shuffled.to_bundle()[1]["keys"])


@pytest.mark.parametrize("name", CAPPABLE)
@pytest.mark.parametrize("min_count", [5, 10**9])
def test_min_count_hashes_rare_ids_like_unseen_ones(name: str, min_count: int) -> None:
    ids, counts, _ = VOCAB
    mapper = fitted(name, min_count=min_count)
    eligible = counts >= min_count
    stored = (min(int(eligible.sum()), HOT_FREQUENCY_IDS) if name == "frequency"
              else int(eligible.sum()))
    assert mapper.nbytes == ID_BYTES * stored + LEARNED_HEADER_BYTES
    rare = ids[~eligible]
    unseen_like = get_mapper(name, num_rows=37).fallback_rows(
        rare, (int(mapper.layout_[1]), int(mapper.layout_[2]))
    )
    np.testing.assert_array_equal(mapper.transform(rare), unseen_like)
    assert mapper.num_unseen_ == rare.size  # counted with the ids served by the fallback
    assert mapper.transform(ids).size and mapper.num_unseen_ == rare.size + ids.size - stored


@pytest.mark.parametrize("name", CAPPABLE)
def test_min_count_requires_hash_policy(name: str) -> None:
    with pytest.raises(
        ValueError, match=r"min_count=3 requires unseen='hash'.*got unseen='oov_row'"
    ):
        get_mapper(name, num_rows=37, min_count=3, unseen="oov_row")
    with pytest.raises(ValueError, match=r"min_count must be an int >= 1"):
        get_mapper(name, num_rows=37, min_count=0)
