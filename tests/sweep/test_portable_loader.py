"""The numpy-only serving loader (mappers/portable.py): copied out of the package and imported in a
process where torch, Ray, MLflow, scikit-learn, scipy, pyarrow and collide itself cannot be
imported, it maps every strategy's export to the rows sweep.load_export gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import mappers
from mappers import get_mapper, portable, save_bundle
from mappers.bundle import read_manifest
from sweep.datasets.base import id_encoding
from sweep.serving import export_feature, export_manifest, load_export

BLOCKED = ("torch", "ray", "mlflow", "sklearn", "scipy", "pyarrow", "pandas", "yaml", "mappers",
           "models", "sweep", "threadpoolctl")
VOCAB = np.unique(np.random.default_rng(0).integers(-2**40, 2**40, 3000))
COUNTS = np.random.default_rng(1).zipf(1.5, VOCAB.size).clip(max=10_000)
STRATEGIES = {  # feature -> (strategy, params); every registered strategy and unseen policy
    "full": ("full", {}),
    "full_hash_unseen": ("full", {"unseen": "hash"}),
    "hash": ("hash", {"num_rows": 97}),
    "double_hash": ("double_hash", {"num_rows": 101, "seed": 3}),
    "qr": ("qr", {"num_rows": 120, "collisions": 8, "seed": 2}),
    "frequency": ("frequency", {"num_rows": 300, "hot_fraction": 0.5}),
    "frequency_capped": ("frequency", {"num_rows": 300, "max_explicit_ids": 100}),
    "embedding": ("embedding", {"num_rows": 64, "unseen": "oov_row", "seed": 1}),
    "frequency_embedding": ("frequency_embedding", {"num_rows": 64, "min_count": 3}),
    "mixed_dim": ("mixed_dim", {"num_rows": 200, "dim": 8}),
    "mixed_dim_oov": ("mixed_dim", {"num_rows": 900, "dim": 4, "unseen": "oov_row"}),
    "mch": ("mch", {"num_rows": 150, "seed": 5}),
}


def test_every_registered_strategy_is_covered():
    assert {strategy for strategy, _ in STRATEGIES.values()} == set(mappers.MAPPERS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    embeddings = np.random.default_rng(2).normal(size=(VOCAB.size, 4))
    features = []
    for index, (name, (strategy, params)) in enumerate(STRATEGIES.items()):
        mapper = get_mapper(strategy, **params)
        mapper.fit(VOCAB, COUNTS, embeddings=embeddings if mapper.needs_embeddings else None)
        if mapper.online:  # mch: its pool as a training stream leaves it
            mapper.observe(np.repeat(VOCAB, COUNTS))
            mapper.update()
            assert mapper.keys_.size > 0
        target = f"bundles/{index:02d}-{name}"
        save_bundle(mapper, out / target)
        features.append(export_feature(name, target, mapper, read_manifest(out / target)["digest"],
                                       vocab_size=VOCAB.size, encoding=id_encoding("int64")))
    text = get_mapper("hash", num_rows=50).fit(VOCAB, COUNTS)
    save_bundle(text, out / "bundles/99-city")
    features.append(export_feature("city", "bundles/99-city", text,
                                   read_manifest(out / "bundles/99-city")["digest"],
                                   vocab_size=VOCAB.size, encoding=id_encoding("text")))
    dense = [{"column": "price", "kind": "log1p_standardize", "mean": 1.5, "std": 2.0,
              "clip_min": 0.0, "reason": "requested"}]
    (out / "export.json").write_text(json.dumps(export_manifest(features,
                                                                dense_transforms=dense)))
    return out


def _queries() -> np.ndarray:
    unseen = np.random.default_rng(3).integers(-2**63, 2**63 - 1, 2000, dtype=np.int64)
    return np.concatenate([VOCAB, unseen, [-1, 0, 2**63 - 1, -2**63]])


def test_in_process_the_two_loaders_agree(exported):
    mine, theirs = portable.load_export(exported), load_export(exported)
    ids = _queries()
    for name in STRATEGIES:
        got, want = mine.transform_ids(name, ids), theirs.transform_ids(name, ids)
        for g, w in zip(*(x if isinstance(x, tuple) else (x,) for x in (got, want)), strict=True):
            np.testing.assert_array_equal(g, w, err_msg=name)
    raw_dense = np.array([[-3.0], [0.0], [12.5]])
    np.testing.assert_array_equal(mine.transform_dense(raw_dense),
                                  theirs.transform_dense(raw_dense))


def test_refuses_unseen_ids_under_unseen_error(tmp_path):
    mapper = get_mapper("frequency", num_rows=10, unseen="error").fit(VOCAB, COUNTS)
    save_bundle(mapper, tmp_path / "bundles/00-f")
    feature = export_feature("f", "bundles/00-f", mapper,
                             read_manifest(tmp_path / "bundles/00-f")["digest"],
                             encoding=id_encoding("int64"))
    (tmp_path / "export.json").write_text(json.dumps(export_manifest([feature])))
    loaded = portable.load_export(tmp_path)
    assert loaded.transform_ids("f", VOCAB[:3]).shape == (3,)
    with pytest.raises(ValueError, match=r"1 of 2 ids are not in the fitted vocabulary "
                                         r"\(unseen='error'\), e\.g\. \[5\]"):
        loaded.transform("f", [int(VOCAB[0]), 5])


def test_tampered_arrays_are_refused(exported, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    arrays = copy / "bundles/00-full/arrays.npz"
    with np.load(arrays) as npz:
        stored = {k: npz[k] for k in npz.files}
    stored["rows"] = stored["rows"][::-1].copy()
    np.savez(arrays, **stored)
    with pytest.raises(ValueError, match=r"arrays\.npz: checksum mismatch for array 'rows'"):
        portable.load_export(copy)


def test_a_copy_of_the_file_serves_without_torch_ray_mlflow_or_collide(exported, tmp_path):
    shutil.copy(Path(portable.__file__), tmp_path / "collide_loader.py")
    ids = _queries()
    np.save(tmp_path / "ids.npy", ids)
    script = textwrap.dedent(f"""
        import sys, importlib.abc

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"blocked import: {{name}}")

        sys.meta_path.insert(0, Block())
        import numpy as np
        import collide_loader

        export = collide_loader.load_export({str(exported)!r})
        ids = np.load("ids.npy")
        out = {{}}
        for name in export.features:
            if name == "city":
                out[name] = export.transform(name, ["Paris", "Rome", None, ""])
                continue
            rows = export.transform_ids(name, ids)
            for t, r in enumerate(rows if isinstance(rows, tuple) else (rows,)):
                out[f"{{name}}.{{t}}"] = r
        out["dense"] = export.transform_dense(np.array([[-3.0], [0.0], [12.5]]))
        np.savez("out.npz", **out)
        print(sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    reference = load_export(exported)
    with np.load(tmp_path / "out.npz") as out:
        for name in STRATEGIES:
            want = reference.transform_ids(name, ids)
            for t, w in enumerate(want if isinstance(want, tuple) else (want,)):
                np.testing.assert_array_equal(out[f"{name}.{t}"], w, err_msg=name)
        np.testing.assert_array_equal(out["city"],
                                      reference.transform("city", ["Paris", "Rome", None, ""]))
        np.testing.assert_array_equal(out["dense"], reference.transform_dense(
            np.array([[-3.0], [0.0], [12.5]])))


def test_a_strategy_the_loader_does_not_know_is_refused_at_load(exported, tmp_path):
    from mappers.bundle import manifest_digest

    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    path = copy / "bundles/02-hash/manifest.json"
    bundle = json.loads(path.read_text())
    bundle["strategy"] = "future_strategy"
    bundle["digest"] = manifest_digest(bundle)
    path.write_text(json.dumps(bundle))
    export = json.loads((copy / "export.json").read_text())
    export["features"][2].update(strategy="future_strategy", digest=bundle["digest"])
    export["digest"] = manifest_digest(export)
    (copy / "export.json").write_text(json.dumps(export))
    with pytest.raises(ValueError, match=r"feature 'hash': strategy 'future_strategy' is not one "
                                         r"this loader knows \(hash, double_hash, qr, full"):
        portable.load_export(copy)
