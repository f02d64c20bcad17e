"""The table optimizers: RowSparseAdam makes torch.optim.SparseAdam's updates, RowWiseAdagrad
FBGEMM's exact row-wise Adagrad, both on the unique rows of a batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.optim import RowSparseAdam, RowWiseAdagrad


def _steps(optimizer_class, batches, lr=0.05, **kwargs) -> tuple[torch.Tensor, dict]:
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(50, 3))
    optimizer = optimizer_class([weight], lr=lr, **kwargs)
    for rows in batches:
        loss = ((F.embedding(rows, weight, sparse=True) ** 2).sum()
                + F.embedding(rows[:2], weight, sparse=True).sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # two lookups: an uncoalesced gradient with repeated rows
        optimizer.step()
    return weight.detach(), optimizer.state[weight]


def test_same_updates_as_torch_sparse_adam_with_repeated_and_untouched_rows():
    generator = torch.Generator().manual_seed(1)
    # rows 30..49 never touched
    batches = [torch.randint(0, 30, (40,), generator=generator) for _ in range(12)]
    fast, fast_state = _steps(RowSparseAdam, batches, betas=(0.8, 0.99), eps=1e-6)
    reference, ref_state = _steps(torch.optim.SparseAdam, batches, betas=(0.8, 0.99), eps=1e-6)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast_state["exp_avg"], ref_state["exp_avg"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fast_state["exp_avg_sq"], ref_state["exp_avg_sq"], rtol=1e-5,
                               atol=1e-7)
    assert fast_state["step"] == 12
    untouched, _ = _steps(RowSparseAdam, [])
    # lazy: no update, no decay
    torch.testing.assert_close(fast[30:], untouched[30:], rtol=0, atol=0)


def test_a_coalesced_gradient_and_a_state_dict_round_trip():
    weight = torch.nn.Parameter(torch.zeros(4, 2))
    optimizer = RowSparseAdam([weight], lr=0.1)
    weight.grad = torch.sparse_coo_tensor([[1, 3]], torch.ones(2, 2), (4, 2),
                                          check_invariants=True).coalesce()
    optimizer.step()
    assert torch.allclose(weight[[1, 3]], torch.full((2, 2), -0.1)) and not weight[[0, 2]].any()
    again = RowSparseAdam([weight], lr=0.1)
    again.load_state_dict(optimizer.state_dict())
    assert again.state[weight]["step"] == 1
    torch.testing.assert_close(again.state[weight]["exp_avg_sq"],
                               optimizer.state[weight]["exp_avg_sq"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": 0.0}, "lr must be > 0, got 0.0"),
    ({"eps": -1.0}, "eps must be > 0, got -1.0"),
    ({"betas": (1.0, 0.9)}, r"betas must be in \[0, 1\), got \(1.0, 0.9\)"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RowSparseAdam([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


def test_a_dense_gradient_is_refused_with_what_to_use():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(ValueError, match="takes sparse gradients .* use torch.optim.Adam for dense "
                                         "ones"):
        RowSparseAdam([weight]).step()


def _rowwise_adagrad_reference(batches, lr, eps, initial) -> tuple[torch.Tensor, torch.Tensor]:
    """The rule written out with dense tensors: a touched row's accumulator grows by the mean
    of its squared summed gradient, and the row moves by -lr g / (sqrt(accumulator) + eps)."""
    torch.manual_seed(0)
    weight = torch.randn(50, 3)
    state_sum = torch.full((50,), initial)
    for rows in batches:
        w = weight.clone().requires_grad_(True)
        loss = (w[rows] ** 2).sum() + w[rows[:2]].sum()
        (grad,) = torch.autograd.grad(loss, w)
        touched = torch.zeros(50, dtype=torch.bool)
        touched[rows] = True
        state_sum[touched] += (grad[touched] ** 2).mean(dim=1)
        weight[touched] -= lr * grad[touched] / (state_sum[touched].sqrt() + eps).unsqueeze(1)
    return weight, state_sum


def test_rowwise_adagrad_makes_the_exact_rowwise_update_with_one_accumulator_per_row():
    generator = torch.Generator().manual_seed(2)
    batches = [torch.randint(0, 30, (40,), generator=generator) for _ in range(12)]
    fast, state = _steps(RowWiseAdagrad, batches, lr=0.05, eps=1e-6,
                         initial_accumulator_value=0.1)
    reference, state_sum = _rowwise_adagrad_reference(batches, 0.05, 1e-6, 0.1)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    assert state["state_sum"].shape == (50,)  # one float per row
    torch.testing.assert_close(state["state_sum"], state_sum, rtol=1e-5, atol=1e-7)
    untouched, _ = _steps(RowWiseAdagrad, [])
    torch.testing.assert_close(fast[30:], untouched[30:], rtol=0, atol=0)
    assert (state["state_sum"][30:] == 0.1).all()


def test_rowwise_adagrad_leaves_the_gradient_as_it_was():
    weight = torch.nn.Parameter(torch.zeros(4, 2))
    grad = torch.sparse_coo_tensor([[1, 3]], torch.full((2, 2), 2.0), (4, 2),
                                   check_invariants=True).coalesce()
    weight.grad = grad
    RowWiseAdagrad([weight], lr=0.1).step()
    assert torch.equal(grad.to_dense()[[1, 3]], torch.full((2, 2), 2.0))
    torch.testing.assert_close(weight[[1, 3]].detach(), torch.full((2, 2), -0.1))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"lr": -0.1}, "lr must be > 0, got -0.1"),
    ({"eps": 0.0}, "eps must be > 0, got 0.0"),
    ({"initial_accumulator_value": -1.0}, "initial_accumulator_value must be >= 0, got -1.0"),
])
def test_rowwise_adagrad_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RowWiseAdagrad([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)


def test_rowwise_adagrad_refuses_a_dense_gradient_with_what_to_use():
    weight = torch.nn.Parameter(torch.zeros(3, 2))
    weight.grad = torch.ones(3, 2)
    with pytest.raises(ValueError, match="use torch.optim.Adagrad for dense ones"):
        RowWiseAdagrad([weight]).step()
