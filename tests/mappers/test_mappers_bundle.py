"""Bundle format details beyond the contract suite: the manifest digest and format version."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mapper_testdata import fitted

from mappers import get_mapper, load_bundle, load_bundle_with_manifest, save_bundle
from mappers.bundle import describe_arrays, manifest_digest, read_bundle


def rewrite_manifest(path, *, redigest: bool = False, drop: tuple[str, ...] = (),
                     **changes) -> None:
    """Edit manifest.json in place; `redigest` recomputes the digest, as a forger would."""
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    for key in drop:
        del manifest[key]
    if redigest:
        manifest["digest"] = manifest_digest(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_bundle_holds_plain_numeric_arrays_and_a_digest(tmp_path) -> None:
    save_bundle(fitted("frequency"), tmp_path)
    manifest, arrays = read_bundle(tmp_path)
    assert sorted(arrays) == ["hash_keys", "keys", "layout", "rows"]
    assert arrays["keys"].dtype == np.int64 and arrays["rows"].dtype == np.int32
    # the floor(0.3 * 37) hot ids (unseen="hash")
    assert manifest["arrays"]["keys"]["shape"] == [11]
    assert manifest["format_version"] == 2
    assert manifest["digest"] == manifest_digest(manifest) and len(manifest["digest"]) == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "manifest.json"]


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("frequency", {"params": {"unseen": "error"}}),
        ("frequency", {"params": {"min_count": 5}}),
        ("full", {"params": {"unseen": "hash"}}),
        ("hash", {"table_sizes": [38]}),
        ("frequency", {"nbytes": 1}),
    ],
)
def test_manifest_only_edit_is_refused_by_the_digest(name: str, edit: dict, tmp_path) -> None:
    save_bundle(fitted(name), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    changes = {k: {**manifest[k], **v} if isinstance(v, dict) else v for k, v in edit.items()}
    rewrite_manifest(tmp_path, **changes)  # arrays.npz untouched
    with pytest.raises(
        ValueError, match=r"manifest\.json: manifest digest mismatch: it records '[0-9a-f]{64}' but"
    ):
        load_bundle(tmp_path)


def test_manifest_without_digest_is_refused(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, drop=("digest",))
    with pytest.raises(ValueError,
                       match=r"manifest\.json: manifest digest mismatch: it records None"):
        load_bundle(tmp_path)


def test_v1_bundle_is_refused_asking_for_a_rewrite(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, format_version=1, drop=("digest",))  # what collide 1 wrote
    with pytest.raises(
        ValueError,
        match=r"manifest\.json: bundle format_version 1 was written by an older collide .*"
        r"re-run the trial or re-export to write format 2",
    ):
        load_bundle(tmp_path)


def test_unknown_format_version_is_rejected(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, format_version=99, redigest=True)
    with pytest.raises(ValueError,
                       match=r"manifest\.json: bundle format_version must be 2, got 99"):
        load_bundle(tmp_path)


def test_unknown_strategy_is_rejected_listing_valid_ones(tmp_path) -> None:
    save_bundle(fitted("hash"), tmp_path)
    rewrite_manifest(tmp_path, strategy="learned_magic", redigest=True)
    with pytest.raises(
        ValueError, match=r"manifest\.json: unknown mapper 'learned_magic'; valid names: full, hash"
    ):
        load_bundle(tmp_path)


def test_manifest_that_disagrees_with_its_arrays_is_rejected(tmp_path) -> None:
    """Even with a recomputed digest, the manifest must agree with what its arrays give."""
    save_bundle(fitted("hash"), tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rewrite_manifest(tmp_path, params={**manifest["params"], "num_rows": 99}, redigest=True)
    with pytest.raises(
        ValueError, match=r"manifest says table_sizes=\[37\] but its arrays give \[99\]"
    ):
        load_bundle(tmp_path)
    rewrite_manifest(tmp_path, params={**manifest["params"], "seed": 1}, redigest=True)
    with pytest.raises(ValueError, match=r"'hash_keys' does not match the seed"):
        load_bundle(tmp_path)


def test_missing_file_and_extra_or_missing_array_are_rejected(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"bundle file missing: .*manifest\.json"):
        load_bundle(tmp_path)
    save_bundle(fitted("frequency"), tmp_path)
    manifest, arrays = read_bundle(tmp_path)
    np.savez(tmp_path / "arrays.npz", extra=np.zeros(2), **arrays)
    with pytest.raises(
        ValueError, match=r"arrays\.npz: arrays \[.*'extra'.*\] do not match the manifest"
    ):
        load_bundle(tmp_path)
    np.savez(tmp_path / "arrays.npz", **{k: v for k, v in arrays.items() if k != "rows"})
    with pytest.raises(
        ValueError, match=r"arrays\.npz: arrays \['hash_keys', 'keys', 'layout'\] do not match the "
        r"manifest's \['hash_keys', 'keys', 'layout', 'rows'\]"
    ):
        load_bundle(tmp_path)
    (tmp_path / "arrays.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"bundle file missing: .*arrays\.npz"):
        load_bundle(tmp_path)


def test_inconsistent_learned_state_is_rejected() -> None:
    manifest, arrays = fitted("frequency").to_bundle()
    arrays = {**arrays, "keys": arrays["keys"][::-1].copy()}  # no longer sorted
    manifest = {**manifest, "arrays": describe_arrays(arrays)}
    with pytest.raises(ValueError, match=r"bundle learned state is inconsistent"):
        type(fitted("frequency")).from_bundle(manifest, arrays)


def test_from_bundle_checks_the_strategy() -> None:
    manifest, arrays = fitted("hash").to_bundle()
    with pytest.raises(ValueError, match=r"bundle strategy is 'hash', cannot load it as 'qr'"):
        type(get_mapper("qr", num_rows=4)).from_bundle(manifest, arrays)


def test_from_bundle_takes_read_bundle_output_and_to_bundle_has_no_digest(tmp_path) -> None:
    mapper = fitted("frequency")
    assert "digest" not in mapper.to_bundle()[0]
    save_bundle(mapper, tmp_path)
    again = type(mapper).from_bundle(*read_bundle(tmp_path))
    ids = np.arange(-50, 50)
    np.testing.assert_array_equal(again.transform(ids), mapper.transform(ids))
    loaded, manifest = load_bundle_with_manifest(tmp_path)
    assert manifest["digest"] == manifest_digest(mapper.to_bundle()[0])
    np.testing.assert_array_equal(loaded.transform(ids), mapper.transform(ids))


def test_bundle_of_a_bundle_is_identical(tmp_path) -> None:
    save_bundle(fitted("frequency_embedding"), tmp_path / "a")
    save_bundle(load_bundle(tmp_path / "a"), tmp_path / "b")
    assert (tmp_path / "a" / "manifest.json").read_text() == (
        tmp_path / "b" / "manifest.json"
    ).read_text()
