"""arrays.npz is checked against the manifest from .npy headers and zip sizes, before
decompressing."""

from __future__ import annotations

import tracemalloc
import zipfile

import numpy as np
import pytest
from mapper_testdata import fitted

from mappers import load_bundle, save_bundle

ZEROS = bytes(1 << 20)  # 1 MiB, written repeatedly
BIG_MIB = 64  # what the crafted members would decompress to


def craft_npz(path, members: dict[str, tuple[dict, int]], *, deflate: bool = True) -> None:
    """Write `path` as a zip of NAME.npy members: a v1.0 header `header`, then `mib` MiB of
    zeros."""
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, (header, mib) in members.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, header)
                for _ in range(mib):
                    member.write(ZEROS)


def header(shape: tuple[int, ...], descr: str = "<u8", fortran_order: bool = False) -> dict:
    return {"descr": descr, "fortran_order": fortran_order, "shape": shape}


@pytest.fixture
def hash_bundle(tmp_path):
    """A valid bundle of a hash mapper: one array, hash_keys <u8 [1]."""
    save_bundle(fitted("hash"), tmp_path)
    return tmp_path


def load_tracing_peak(path) -> tuple[BaseException, int]:
    """(the error load_bundle(path) raised, peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as caught:
            load_bundle(path)
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_header_claiming_a_huge_array_is_refused_without_allocating_it(hash_bundle) -> None:
    """The issue's bomb: a small deflated file whose header claims 64 MiB; manifest says [1]."""
    craft_npz(hash_bundle / "arrays.npz", {"hash_keys": (header((BIG_MIB << 17,)), BIG_MIB)})
    assert (hash_bundle / "arrays.npz").stat().st_size < 1 << 20
    error, peak = load_tracing_peak(hash_bundle)
    assert peak < 4 << 20, f"peak {peak} bytes: the array was allocated or decompressed"
    assert ("arrays.npz: array 'hash_keys' is <u8[8388608] in its .npy header, manifest says <u8[1]"
            in str(error))


def test_member_declaring_more_bytes_than_its_header_implies_is_refused(hash_bundle) -> None:
    craft_npz(hash_bundle / "arrays.npz", {"hash_keys": (header((1,)), BIG_MIB)})
    error, peak = load_tracing_peak(hash_bundle)
    assert peak < 4 << 20
    declares = (f"array 'hash_keys' declares {(BIG_MIB << 20) + 128} bytes uncompressed, but its "
                "header ")
    assert declares in str(error)
    assert "imply 136" in str(error)


def test_member_declaring_fewer_bytes_than_its_header_implies_is_refused(hash_bundle) -> None:
    craft_npz(hash_bundle / "arrays.npz", {"hash_keys": (header((1,)), 0)}, deflate=False)
    with pytest.raises(ValueError,
                       match=r"'hash_keys' declares 128 bytes uncompressed, .* imply 136"):
        load_bundle(hash_bundle)


def test_fortran_order_member_is_refused(hash_bundle) -> None:
    keys = np.load(hash_bundle / "arrays.npz")["hash_keys"]
    with zipfile.ZipFile(hash_bundle / "arrays.npz", "w") as archive, archive.open(
        "hash_keys.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header((1,), fortran_order=True))
        f.write(keys.tobytes())  # same bytes, checksum would pass
    with pytest.raises(ValueError,
                       match=r"arrays\.npz: array 'hash_keys' is stored in Fortran order"):
        load_bundle(hash_bundle)


@pytest.mark.parametrize(("descr", "what"),
                         [("|O", "is a pickled object array"), ("<U2", "not numeric")])
def test_non_numeric_header_is_refused(hash_bundle, descr: str, what: str) -> None:
    craft_npz(hash_bundle / "arrays.npz", {"hash_keys": (header((1,), descr=descr), 0)})
    with pytest.raises(ValueError,
                       match=rf"arrays\.npz: array 'hash_keys' (has dtype .*, )?{what}"):
        load_bundle(hash_bundle)


def test_unlisted_and_badly_named_members_are_refused(hash_bundle) -> None:
    craft_npz(hash_bundle / "arrays.npz",
              {"hash_keys": (header((1,)), 0), "evil": (header((1,)), 0)})
    with pytest.raises(ValueError,
                       match=r"arrays \['evil', 'hash_keys'\] do not match the manifest's"):
        load_bundle(hash_bundle)
    with zipfile.ZipFile(hash_bundle / "arrays.npz", "w") as archive:
        archive.writestr("hash_keys.pkl", b"x")
    with pytest.raises(ValueError, match=r"member 'hash_keys\.pkl' is not a NAME\.npy array"):
        load_bundle(hash_bundle)


def test_not_a_zip_and_a_broken_header_are_refused(hash_bundle) -> None:
    (hash_bundle / "arrays.npz").write_bytes(b"\x93NUMPY not a zip")
    with pytest.raises(ValueError, match=r"arrays\.npz: not a zip archive of \.npy arrays"):
        load_bundle(hash_bundle)
    with zipfile.ZipFile(hash_bundle / "arrays.npz", "w") as archive:
        archive.writestr("hash_keys.npy", b"\x93NUMPY\x01\x00\xff\xff{")
    with pytest.raises(ValueError, match=r"array 'hash_keys' has no valid \.npy header"):
        load_bundle(hash_bundle)


def test_compressed_bundle_with_honest_sizes_still_loads(hash_bundle) -> None:
    """np.savez_compressed output is fine: the checks are about sizes, not compression."""
    with np.load(hash_bundle / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez_compressed(hash_bundle / "arrays.npz", **arrays)
    assert load_bundle(hash_bundle).transform(np.arange(5)).shape == (5,)
