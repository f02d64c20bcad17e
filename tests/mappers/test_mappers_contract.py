"""The contract every entry of mappers.MAPPERS must meet (one suite, parametrised)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from mapper_testdata import CONTRACT_PARAMS, VOCAB, as_tables, fitted, zipf_vocab

import mappers
from mappers import MAPPERS, NotFittedError, get_mapper, load_bundle, save_bundle

NAMES = sorted(MAPPERS)
INT64 = st.integers(-(2**63), 2**63 - 1)
RAW_IDS = arrays(
    np.int64,
    array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=st.one_of(INT64, st.sampled_from(VOCAB[0].tolist())),  # unseen and training ids
)


def random_ids(n: int, seed: int) -> np.ndarray:
    """n raw ids: a third training ids, the rest arbitrary int64 (mostly unseen)."""
    rng = np.random.default_rng(seed)
    unseen = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    seen = rng.choice(VOCAB[0], size=n)
    return np.where(rng.random(n) < 1 / 3, seen, unseen)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=RAW_IDS)
def test_rows_in_range_int64_same_shape(name: str, raw: np.ndarray) -> None:
    mapper = _FITTED[name]
    tables = as_tables(mapper.transform(raw))
    assert len(tables) == len(mapper.table_sizes)
    for rows, size in zip(tables, mapper.table_sizes, strict=True):
        assert rows.dtype == np.int64 and rows.shape == raw.shape
        assert np.all((rows >= 0) & (rows < size))


_FITTED = {name: fitted(name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_attributes(name: str) -> None:
    mapper = _FITTED[name]
    assert mapper.name == name and isinstance(mapper, mappers.Mapper)
    assert json.loads(json.dumps(mapper.params)) == mapper.params
    assert type(mapper)(**mapper.params).params == mapper.params
    assert mapper.combine in {"none", "sum", "mult", "add", "concat", "mixed"}
    assert (mapper.combine in ("none", "mixed")) == (len(mapper.table_sizes) == 1)
    assert all(isinstance(s, int) and s >= 1 for s in mapper.table_sizes)
    assert isinstance(mapper.nbytes, int) and mapper.nbytes > 0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_rows_and_training_ids_counted_as_seen(name: str) -> None:
    ids = random_ids(5000, seed=1)
    first, second = fitted(name, seed=3), fitted(name, seed=3)
    for a, b in zip(as_tables(first.transform(ids)), as_tables(second.transform(ids)), strict=True):
        np.testing.assert_array_equal(a, b)
    first.num_unseen_ = 0
    first.transform(VOCAB[0])
    # num_unseen_ counts the ids the fallback serves: none of the training ids, unless the
    # mapper stores only some of them (frequency under unseen="hash" keeps just the hot ids)
    stored = getattr(first, "keys_", VOCAB[0])
    assert first.num_unseen_ == VOCAB[0].size - stored.size


@pytest.mark.parametrize("name", NAMES)
def test_refit_overwrites_old_state(name: str) -> None:
    other_ids, other_counts, other_embeddings = zipf_vocab(200, 4, seed=9)
    query = np.concatenate([random_ids(2000, seed=2), other_ids])
    refit = fitted(name)
    refit.transform(query)
    refit.fit(other_ids, other_counts, other_embeddings)
    assert refit.num_unseen_ == 0
    fresh = get_mapper(name, **CONTRACT_PARAMS[name]).fit(other_ids, other_counts, other_embeddings)
    for a, b in zip(
        as_tables(refit.transform(query)), as_tables(fresh.transform(query)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert refit.table_sizes == fresh.table_sizes and refit.nbytes == fresh.nbytes


@pytest.mark.parametrize("name", NAMES)
def test_transform_before_fit_raises(name: str) -> None:
    mapper = get_mapper(name, **CONTRACT_PARAMS[name])
    with pytest.raises(
        NotFittedError, match=r"not fitted: call fit\(ids, counts, embeddings\) before transform"
    ):
        mapper.transform(np.arange(3))
    with pytest.raises(NotFittedError, match="before to_bundle"):
        mapper.to_bundle()


@pytest.mark.parametrize("name", NAMES)
def test_bundle_round_trip_transforms_identically(name: str, tmp_path) -> None:
    mapper = fitted(name)
    save_bundle(mapper, tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["strategy"] == name and manifest["format_version"] == mappers.FORMAT_VERSION
    assert manifest["table_sizes"] == list(mapper.table_sizes)
    assert manifest["nbytes"] == mapper.nbytes and manifest["combine"] == mapper.combine
    assert all(len(info["sha256"]) == 64 for info in manifest["arrays"].values())
    loaded = load_bundle(tmp_path / "bundle")
    assert type(loaded) is type(mapper) and loaded.params == mapper.params
    ids = random_ids(100_000, seed=4)
    for a, b in zip(
        as_tables(mapper.transform(ids)), as_tables(loaded.transform(ids)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    again = type(mapper).from_bundle(*mapper.to_bundle())
    np.testing.assert_array_equal(
        as_tables(again.transform(ids))[0], as_tables(mapper.transform(ids))[0]
    )


@pytest.mark.parametrize("name", NAMES)
def test_tampered_array_is_rejected_naming_the_file(name: str, tmp_path) -> None:
    save_bundle(fitted(name), tmp_path)
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key].copy() for key in npz.files}
    target = sorted(arrays)[-1]
    arrays[target].reshape(-1)[0] ^= 1
    np.savez(tmp_path / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match=rf"arrays\.npz: checksum mismatch for array '{target}'"):
        load_bundle(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_pickled_object_array_is_refused(name: str, tmp_path) -> None:
    save_bundle(fitted(name), tmp_path)
    np.savez(tmp_path / "arrays.npz", hash_keys=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(
        ValueError, match=r"arrays\.npz: array 'hash_keys' is a pickled object array"
    ):
        load_bundle(tmp_path)


def test_unknown_name_lists_valid_names() -> None:
    valid = "full, hash, double_hash, frequency, qr, embedding, frequency_embedding"
    with pytest.raises(ValueError, match=rf"unknown mapper 'hsah'; valid names: {valid}"):
        get_mapper("hsah", num_rows=10)


@pytest.mark.parametrize("name", NAMES)
def test_bad_params_name_param_value_and_allowed(name: str) -> None:
    params = CONTRACT_PARAMS[name]
    with pytest.raises(
        ValueError, match=r"seed must be an int in \[0, 9223372036854775807\], got -1"
    ):
        get_mapper(name, **{**params, "seed": -1})
    with pytest.raises(ValueError, match=rf"bad params for mapper '{name}': .*'num_buckets'"):
        get_mapper(name, **params, num_buckets=3)
    if "num_rows" in params:
        with pytest.raises(
            ValueError, match=r"num_rows must be an int in \[\d, 2147483647\], got 0"
        ):
            get_mapper(name, **{**params, "num_rows": 0})
        with pytest.raises(ValueError, match=r"num_rows must be an int .*, got 10\.5"):
            get_mapper(name, **{**params, "num_rows": 10.5})
