"""Fixtures for the models tests; data helpers live in models_testdata.py."""

from __future__ import annotations

import pytest
import torch

from models import FeatureSpec


@pytest.fixture
def all_kinds() -> tuple[FeatureSpec, ...]:
    """Every table kind: plain, double hash, QR mult/add/concat, multi-valued sum/mean."""
    return (
        FeatureSpec("plain", (11,)),
        FeatureSpec("plain2", (9,)),
        FeatureSpec("double", (5, 7), combine="sum"),
        FeatureSpec("qr_mult", (3, 4), combine="mult"),
        FeatureSpec("qr_add", (4, 3), combine="add"),
        FeatureSpec("qr_concat", (6, 2), combine="concat"),
        FeatureSpec("bag_mean", (8,), multi_valued=True, pooling="mean"),
        FeatureSpec("bag_qr", (4, 3), combine="concat", multi_valued=True),
        FeatureSpec("bag_double", (5, 5), combine="sum", multi_valued=True),
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: a second thread only adds contention on the shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
