"""docs/EXPORT.md matches the code: its export.json example is what collide writes for the export it
describes (every digest included), and its usage example runs against that export."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from mappers import get_mapper, portable, save_bundle, save_tables
from mappers.bundle import read_manifest
from mappers.portable import precision_scheme
from sweep.datasets.base import id_encoding
from sweep.serving import export_feature, export_manifest, load_export

DOC = Path(__file__).resolve().parents[2] / "docs" / "EXPORT.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def _trained_table(rows: int) -> np.ndarray:
    """A stand-in for a trained (rows, 8) table."""
    return np.linspace(-0.5, 0.5, rows * 8, dtype=np.float32).reshape(rows, 8)


def _write_the_documented_export(out: Path) -> dict:
    """The export the doc's example describes: two features of the Adult census table."""
    ids = np.array([11, 12, 13, 14], dtype=np.int64)
    maps = {"occupation": (get_mapper("frequency", num_rows=3, hot_fraction=0.5).fit(
                ids, np.array([9, 5, 2, 1])), id_encoding("text")),
            "tags": (get_mapper("hash", num_rows=2, seed=0).fit(ids, np.ones(4, dtype=np.int64)),
                     id_encoding("text", True, "|"))}
    features = []
    for index, (name, (mapper, encoding)) in enumerate(maps.items()):
        target, tables = f"bundles/{index:02d}-{name}", f"tables/{index:02d}-{name}"
        save_bundle(mapper, out / target)
        save_tables([_trained_table(mapper.table_sizes[0])], "fp32", name, out / tables)
        features.append(export_feature(name, target, mapper, read_manifest(out / target)["digest"],
                                       vocab_size=4, encoding=encoding, tables={
                                           "path": tables, "shapes": [[mapper.table_sizes[0], 8]],
                                           "digest": read_manifest(out / tables)["digest"]}))
    manifest = export_manifest(
        features, experiment="adult", parent_run_id="8c1f0e5a9b2d4c7e",
        source_run_id="3e5d7a9c1b2f4e6a", trial="frequency-c4-d8-s0",
        selection={"max_bytes": 15000.0, "max_val_loss": None, "ranked": "trials"},
        metrics={"val_logloss": 0.4211, "test_logloss": 0.4185, "test_auc": 0.8712,
                 "test_ne": 0.7634},
        sizes={"embedding_bytes": 9632, "mapping_bytes": 104, "dense_bytes": 3881,
               "total_bytes": 13617, "compression_ratio": 3.9},
        embedding_dim=8, dense_transforms=[{"column": "age", "kind": "standardize", "mean": 38.6,
                                            "std": 13.6, "clip_min": None,
                                            "reason": "skewness 0.56, range ratio 2.3"}],
        precision="fp32", precision_scheme=precision_scheme("fp32"))
    (out / "export.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def test_the_documented_export_json_is_what_collide_writes(tmp_path):
    documented = json.loads(_blocks("json")[0])
    assert _write_the_documented_export(tmp_path) == documented
    assert portable.read_export_manifest(tmp_path)["digest"] == documented["digest"]
    # the documented bundle manifest: the same fields, digests shortened in the doc
    bundle = re.sub(r'"([0-9a-f]{8})\.\.\."', r'"\1"', _blocks("json")[2])
    shown, written = json.loads(bundle), read_manifest(tmp_path / "bundles/00-occupation")
    assert shown.keys() == written.keys() and shown["params"] == written["params"]
    assert written["digest"].startswith(shown["digest"])
    assert {k: v["sha256"][:8] for k, v in written["arrays"].items()} == {
        k: v["sha256"] for k, v in shown["arrays"].items()}


def test_the_documented_usage_runs(tmp_path, monkeypatch):
    _write_the_documented_export(tmp_path / "exported")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "portable", portable)  # the copied file, as the doc says
    code = next(block for block in _blocks("python") if "load_export" in block)
    scope = {"raw_dense": np.array([[25.0], [60.0]])}
    exec(compile(code, str(DOC), "exec"), scope)  # noqa: S102 (the doc's own example)
    reference = load_export(tmp_path / "exported")
    np.testing.assert_array_equal(scope["rows"], reference.transform("occupation", ["Sales"]))
    np.testing.assert_array_equal(scope["offsets"], [0, 2, 3, 4])
    np.testing.assert_allclose(scope["dense"], [[(25 - 38.6) / 13.6], [(60 - 38.6) / 13.6]],
                               rtol=1e-6)
    table = _trained_table(3)
    np.testing.assert_array_equal(scope["table"], table)
    np.testing.assert_array_equal(scope["vectors"], table[scope["rows"]])
