"""Windows built ahead by a background thread (models.stream.prefetched, used on CUDA): the same
items in the same order, errors raised where they happened, no thread left behind, and the
same training as without it."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from models_testdata import planted_split

from models import DLRM, DLRMConfig, FeatureSpec, InMemoryBlocks, TrainConfig
from models.stream import prefetched
from models.train import _Epoch, make_optimizers


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "collide-prefetch"]


def test_items_arrive_in_order_and_the_thread_ends():
    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))
    assert not _prefetch_threads()


def test_the_producer_runs_at_most_depth_ahead():
    made = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    stream = prefetched(items(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    # one handed out, two waiting in the queue, one made and waiting for room
    assert len(made) <= 4
    stream.close()
    assert not _prefetch_threads()


def test_an_error_is_raised_to_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("block 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="block 3 is corrupt"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2] and not _prefetch_threads()


def test_a_consumer_that_stops_early_stops_and_joins_the_thread():
    stream = prefetched(iter(range(10**9)))
    for item in stream:
        if item == 3:
            break
    stream.close()
    assert not _prefetch_threads()


def test_training_with_windows_built_ahead_is_the_same_training():
    split, _ = planted_split(3000, 30, 3, seed=0)
    config = DLRMConfig(1, (FeatureSpec("ad", (30,)), FeatureSpec("noise", (7,))), embedding_dim=4,
                        bottom_mlp=(8,),
                        top_mlp=(8,))
    cfg = TrainConfig(batch_size=64, epochs=1, lr=0.01)
    weights = []
    for prefetch in (False, True):
        torch.manual_seed(0)
        model = DLRM(config)
        epoch = _Epoch(model, make_optimizers(model, cfg), cfg, torch.device("cpu"),
                       torch.Generator().manual_seed(0), prefetch=prefetch)
        blocks = InMemoryBlocks(split, block_rows=100)  # 30 blocks: 4 windows of up to 8
        losses = [epoch.run(blocks, e) for e in (1, 2)]
        weights.append((losses, [p.detach().clone() for p in model.parameters()]))
    (loss_a, a), (loss_b, b) = weights
    assert loss_a == loss_b
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not _prefetch_threads()
