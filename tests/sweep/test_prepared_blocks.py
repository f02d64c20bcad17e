"""A trial's splits read a block at a time (sweep.trial.stream) against the whole-column path
they replaced: the same rows, the same mapped ids, and, in the same batch order, the same
validation logloss."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mappers import get_strategy
from models import EncodedSplit, InMemoryBlocks, TrainConfig, train
from models.stream import shuffled_windows
from sweep.datasets import get_source, prepare
from sweep.datasets.prepared import take_bags
from sweep.trial import TrialConfig
from sweep.trial.config import ModelConfig
from sweep.trial.encoding import feature_specs
from sweep.trial.mapping import fit_mappers
from sweep.trial.stream import PreparedBlocks, RowSample, sample_for

BLOCK = 700  # rows per block here: several blocks, and a last one that is short


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """A table with two categorical features and one multi-valued one (bags of 0-3 tags)."""
    root = tmp_path_factory.mktemp("tagged")
    rng = np.random.default_rng(5)
    lines = ["y,x,c,d,tags"]
    for _ in range(5000):
        c, d = int(rng.zipf(1.5)) % 300, int(rng.integers(0, 40))
        tags = "|".join(f"t{int(t)}" for t in rng.integers(0, 60, size=int(rng.integers(0, 4))))
        y = int(rng.random() < (0.2 + 0.5 * (c % 3 == 0)))
        lines.append(f"{y},{rng.standard_normal():.4f},c{c},d{d},{tags}")
    (root / "t.csv").write_text("\n".join(lines) + "\n")
    (root / "t.yaml").write_text("label: y\ndense: [x]\ncategorical: [c, d]\nmulti_valued: "
                                 "[tags]\n")
    return prepare(get_source("table", path=str(root / "t.csv"), schema_file=str(root / "t.yaml")),
                   root / "prepared")


def _reference(dataset, mappers, split: str) -> EncodedSplit:
    """The whole-column path the streaming replaced: transform every value of a column once,
    then select the split's rows."""
    rows = dataset.split_indices(split)
    tables = []
    for name in dataset.feature_names:
        column = dataset.sparse[name]
        mapped = mappers[name].transform(np.asarray(column.values))
        for table in mapped if isinstance(mapped, tuple) else (mapped,):
            tables.append(table[rows] if column.offsets is None
                          else take_bags(table, np.asarray(column.offsets), rows))
    return EncodedSplit(dense=np.asarray(dataset.dense)[rows],
                        labels=np.asarray(dataset.labels)[rows], tables=tables)


def _mappers(dataset, strategy: str):
    config = TrialConfig(data=str(dataset.path), strategy=strategy, compression=4, dim=4)
    config = replace(config, model=replace(config.model, full_threshold=0))
    probe = None
    if get_strategy(strategy).needs_embeddings:
        rng = np.random.default_rng(0)
        probe = {n: rng.standard_normal((len(dataset.vocab[n].ids), 3)).astype(np.float32)
                 for n in dataset.feature_names}
    return fit_mappers(config, dataset, probe)


def _bounds(blocks: PreparedBlocks) -> list[int]:
    sizes = [blocks.block(i).num_samples for i in range(blocks.num_blocks)]
    return [0, *np.cumsum(sizes).tolist()]


def _same(a: EncodedSplit, b: EncodedSplit) -> None:
    np.testing.assert_array_equal(a.dense, b.dense)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert len(a.tables) == len(b.tables)
    for x, y in zip(a.tables, b.tables, strict=True):
        if isinstance(x, tuple):
            np.testing.assert_array_equal(x[0], y[0])
            np.testing.assert_array_equal(x[1], y[1])
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("strategy", ["hash", "qr", "frequency_embedding"])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_blocks_hold_the_split_rows_mapped_as_the_whole_column_path(tagged, strategy, split):
    mappers = _mappers(tagged, strategy)
    blocks = PreparedBlocks(tagged, split, mappers, block_rows=BLOCK)
    reference = _reference(tagged, mappers, split)
    assert blocks.num_samples == reference.num_samples == len(tagged.split_indices(split))
    assert blocks.num_blocks == -(-tagged.num_rows // BLOCK)  # a random split: no block is empty
    assert blocks.click_rate() == pytest.approx(float(reference.labels.mean()))
    for i in range(blocks.num_blocks):
        bounds = _bounds(blocks)
        _same(blocks.block(i), InMemoryBlocks(reference, bounds=bounds).block(i))


@pytest.mark.parametrize("strategy", ["hash", "frequency_embedding"])
def test_streaming_gives_the_whole_column_paths_losses_in_the_same_batch_order(tagged, strategy):
    mappers = _mappers(tagged, strategy)
    streamed = [PreparedBlocks(tagged, s, mappers, block_rows=BLOCK)
                for s in ("train", "val", "test")]
    in_memory = [InMemoryBlocks(_reference(tagged, mappers, s.split), bounds=_bounds(s))
                 for s in streamed]
    config = TrainConfig(batch_size=64, epochs=2, seed=3, num_threads=1,
                         early_stopping_patience=None)
    model = ModelConfig(bottom_mlp=(8,), top_mlp=(8,)).architecture(4, 1, feature_specs(
        tagged, mappers))
    a = train(model, config, *streamed)
    b = train(model, config, *in_memory)
    assert [h["val_logloss"] for h in a.history] == pytest.approx(
        [h["val_logloss"] for h in b.history], rel=1e-6)
    assert a.test_metrics["test_logloss"] == pytest.approx(b.test_metrics["test_logloss"],
                                                           rel=1e-6)


def test_a_sequential_split_has_no_empty_blocks(tmp_path):
    data = prepare(get_source("synthetic", num_rows=5000, vocab_sizes=(20, 50), split="sequential"),
                   tmp_path / "d")
    mappers = _mappers(data, "hash")
    train_blocks = PreparedBlocks(data, "train", mappers, block_rows=BLOCK)
    test_blocks = PreparedBlocks(data, "test", mappers, block_rows=BLOCK)
    assert train_blocks.num_samples + test_blocks.num_samples + PreparedBlocks(
        data, "val", mappers, block_rows=BLOCK).num_samples == 5000
    assert all(train_blocks.block(i).num_samples for i in range(train_blocks.num_blocks))
    assert test_blocks.num_blocks <= 2  # the last 10% of 5000 rows, in blocks of 700


def test_a_row_sample_is_seeded_sized_and_independent_of_the_split(tagged):
    sample = RowSample(0.25, seed=1)
    kept = sample.keep(0, 200_000)
    assert kept.tolist() == RowSample(0.25, seed=1).keep(0, 200_000).tolist()
    assert kept[1000:2000].tolist() == sample.keep(1000, 2000).tolist()  # any chunking
    assert kept.mean() == pytest.approx(0.25, abs=0.005)
    assert kept.tolist() != RowSample(0.25, seed=2).keep(0, 200_000).tolist()
    mappers = _mappers(tagged, "hash")
    whole = PreparedBlocks(tagged, "val", mappers)
    sampled = PreparedBlocks(tagged, "val", mappers, sample_for(whole.num_samples, 100, seed=0))
    # the val rows are themselves a hash-selected share: the sample must not line up with them
    assert 60 <= sampled.num_samples <= 140
    assert sample_for(whole.num_samples, whole.num_samples, seed=0) is None
    assert sample_for(whole.num_samples, None, seed=0) is None


@pytest.mark.parametrize("strategy", ["hash", "qr", "frequency_embedding"])
def test_windows_read_and_mapped_by_background_threads_are_the_same(tagged, strategy):
    """On CUDA a trial reads and maps its next windows in threads (models.stream.built_ahead):
    the blocks, the maps and the bags come out as they do in line, in the same order."""
    blocks = PreparedBlocks(tagged, "train", _mappers(tagged, strategy), block_rows=BLOCK)
    epochs = []
    for threads in (0, 4):
        generator = torch.Generator().manual_seed(9)
        epochs.append([window for _ in range(2)
                       for window in shuffled_windows(blocks, generator, 2, threads=threads)])
    assert len(epochs[0]) == len(epochs[1]) == 2 * -(-blocks.num_blocks // 2)
    for (rows_a, order_a), (rows_b, order_b) in zip(*epochs, strict=True):
        _same(rows_a, rows_b)
        assert torch.equal(order_a, order_b)
