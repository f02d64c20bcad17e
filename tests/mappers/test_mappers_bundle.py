"""Bundle format details beyond the contract suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mapper_testdata import fitted

from mappers import get_mapper, load_bundle, save_bundle
from mappers.bundle import read_bundle


def rewrite_manifest(path, **changes) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_bundle_holds_plain_numeric_arrays(tmp_path) -> None:
    save_bundle(fitted("frequency"), tmp_path)
    manifest, arrays = read_bundle(tmp_path)
    assert sorted(arrays) == ["hash_keys", "keys", "layout", "rows"]
    assert arrays["keys"].dtype == np.int64 and arrays["rows"].dtype == np.int32
    assert manifest["arrays"]["keys"]["shape"] == [11]  # the floor(0.3 * 37) hot ids (unseen="hash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "manifest.json"]


def test_unknown_format_version_is_rejected(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, format_version=99)
    with pytest.raises(ValueError, match=r"bundle format_version must be 1, got 99"):
        load_bundle(tmp_path)


def test_unknown_strategy_is_rejected_listing_valid_ones(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, strategy="learned_magic")
    with pytest.raises(
        ValueError, match=r"manifest\.json: unknown mapper 'learned_magic'; valid names: full, hash"
    ):
        load_bundle(tmp_path)


def test_manifest_that_disagrees_with_its_arrays_is_rejected(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rewrite_manifest(tmp_path, params={**manifest["params"], "num_rows": 99})
    with pytest.raises(
        ValueError, match=r"manifest says table_sizes=\[37\] but its arrays give \[99\]"
    ):
        load_bundle(tmp_path)
    rewrite_manifest(tmp_path, params={**manifest["params"], "seed": 1})
    with pytest.raises(ValueError, match=r"'hash_keys' does not match the seed"):
        load_bundle(tmp_path)


def test_missing_file_and_extra_array_are_rejected(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"bundle file missing: .*manifest\.json"):
        load_bundle(tmp_path)
    save_bundle(fitted("frequency"), tmp_path)
    manifest, arrays = read_bundle(tmp_path)
    np.savez(tmp_path / "arrays.npz", extra=np.zeros(2), **arrays)
    with pytest.raises(
        ValueError, match=r"arrays\.npz: arrays \[.*'extra'.*\] do not match the manifest"
    ):
        load_bundle(tmp_path)


def test_inconsistent_learned_state_is_rejected() -> None:
    manifest, arrays = fitted("frequency").to_bundle()
    arrays = {**arrays, "keys": arrays["keys"][::-1].copy()}  # no longer sorted
    from mappers.bundle import describe_arrays

    manifest = {**manifest, "arrays": describe_arrays(arrays)}
    with pytest.raises(ValueError, match=r"bundle learned state is inconsistent"):
        type(fitted("frequency")).from_bundle(manifest, arrays)


def test_from_bundle_checks_the_strategy() -> None:
    manifest, arrays = fitted("hash").to_bundle()
    with pytest.raises(ValueError, match=r"bundle strategy is 'hash', cannot load it as 'qr'"):
        type(get_mapper("qr", num_rows=4)).from_bundle(manifest, arrays)


def test_bundle_of_a_bundle_is_identical(tmp_path) -> None:
    save_bundle(fitted("frequency_embedding"), tmp_path / "a")
    save_bundle(load_bundle(tmp_path / "a"), tmp_path / "b")
    assert (tmp_path / "a" / "manifest.json").read_text() == (
        tmp_path / "b" / "manifest.json"
    ).read_text()
