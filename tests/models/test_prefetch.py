"""Windows built ahead by background threads (models.stream.built_ahead, used on CUDA): the same
items in the same order, errors raised where they happened, no thread left behind, and the
same training as without them."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from models_testdata import planted_split

from models import DLRM, DLRMConfig, FeatureSpec, InMemoryBlocks, TrainConfig
from models.stream import PREFETCH_THREAD, built_ahead, shuffled_windows
from models.train import _Epoch, make_optimizers


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]


def _slowly_squared(x: int) -> int:
    time.sleep(0.001 * (x % 3))  # builds finish out of order
    return x * x


@pytest.mark.parametrize("threads", [1, 3])
def test_items_arrive_in_order_and_the_threads_end(threads):
    assert list(built_ahead(_slowly_squared, range(100), threads)) == [x * x for x in range(100)]
    assert not _prefetch_threads()


@pytest.mark.parametrize("threads", [1, 3])
def test_the_builders_run_at_most_threads_ahead(threads):
    made = []

    def build(x: int) -> int:
        made.append(x)
        return x

    stream = built_ahead(build, range(50), threads)
    assert next(stream) == 0
    time.sleep(0.3)
    # one handed out, `threads` more built or building
    assert len(made) == threads + 1
    stream.close()
    assert not _prefetch_threads()


def test_an_error_is_raised_to_the_consumer_after_the_items_before_it():
    def build(x: int) -> int:
        if x == 3:
            raise ValueError("block 3 is corrupt")
        return x

    got = []
    with pytest.raises(ValueError, match="block 3 is corrupt"):
        for item in built_ahead(build, range(1, 10), threads=2):
            got.append(item)
    assert got == [1, 2] and not _prefetch_threads()


def test_a_consumer_that_stops_early_stops_and_joins_the_threads():
    stream = built_ahead(_slowly_squared, range(10**9), threads=4)
    for item in stream:
        if item == 9:
            break
    stream.close()
    assert not _prefetch_threads()


def test_threads_must_be_at_least_one():
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        next(built_ahead(_slowly_squared, range(3), threads=0))


def test_the_shuffle_is_the_same_with_windows_built_ahead():
    split, _ = planted_split(3000, 30, 3, seed=0)
    blocks = InMemoryBlocks(split, block_rows=100)
    epochs = []
    for threads in (0, 1, 3):
        generator = torch.Generator().manual_seed(5)
        epochs.append([(rows.dense[order.numpy()].tolist()) for _ in range(2)
                       for rows, order in shuffled_windows(blocks, generator, 4, threads=threads)])
    assert epochs[0] == epochs[1] == epochs[2]
    assert not _prefetch_threads()


def test_training_with_windows_built_ahead_is_the_same_training():
    split, _ = planted_split(3000, 30, 3, seed=0)
    config = DLRMConfig(1, (FeatureSpec("ad", (30,)), FeatureSpec("noise", (7,))), embedding_dim=4,
                        bottom_mlp=(8,),
                        top_mlp=(8,))
    cfg = TrainConfig(batch_size=64, epochs=1, lr=0.01)
    weights = []
    for threads in (0, 2):
        torch.manual_seed(0)
        model = DLRM(config)
        epoch = _Epoch(model, make_optimizers(model, cfg), cfg, torch.device("cpu"),
                       torch.Generator().manual_seed(0), build_threads=threads)
        blocks = InMemoryBlocks(split, block_rows=100)  # 30 blocks: 4 windows of up to 8
        losses = [epoch.run(blocks, e) for e in (1, 2)]
        weights.append((losses, [p.detach().clone() for p in model.parameters()]))
    (loss_a, a), (loss_b, b) = weights
    assert loss_a == loss_b
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not _prefetch_threads()
