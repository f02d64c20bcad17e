"""Table optimizers on the rows a batch touched, with plain index ops.

`RowWiseAdagrad` is FBGEMM's `EXACT_ROWWISE_ADAGRAD`, the optimizer of production DLRM
trainers: one accumulator per row (not per weight), so its state is 1/dim of a table, and a
step reads and writes one float of state per touched row instead of Adam's two vectors.

`RowSparseAdam`: lazy Adam on the rows a batch touched.

The math is `torch.optim.SparseAdam`'s (lazy Adam: only the rows in the gradient update
their moments and weights; bias correction uses the optimizer's global step), so a model
trains to the same weights up to float rounding. The work is not: SparseAdam coalesces the
gradient into a sparse tensor and adds three more sparse tensors into dense ones
(`sparse_mask`, sparse `add_`), which on the Criteo Kaggle model costs more than the MLPs'
GEMMs. Here a step is: the unique rows of the gradient (`torch.unique`), their summed
gradient (`index_add_`), their moments gathered (`index_select`), updated in place and
written back (`index_copy_`), and the weights' `index_add_`: about half of SparseAdam's
time, and what remains is random row access into three tables (weights and two moments),
bound by memory latency (benchmarks/train_throughput.py measures all three; keeping a row's
two moments side by side in one tensor was slower). Production DLRM trainers
(FBGEMM's fused TBE optimizers, torchrec) do the same on the unique rows of a batch.

The same code runs on CUDA tensors; nothing leaves the device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["RowSparseAdam", "RowWiseAdagrad"]


class _RowOptimizer(torch.optim.Optimizer):
    """The loop both table optimizers share: each parameter's sparse gradient reduced to its
    unique rows and their summed gradient, then `_update` on those rows alone."""

    dense_alternative = ""  # what to use for dense gradients, for the error

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch.optim.Optimizer's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise ValueError(f"{type(self).__name__} takes sparse gradients (an embedding "
                                     f"with sparse=True); use {self.dense_alternative} for dense "
                                     "ones")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    self._init_state(state, param, group)
                state["step"] += 1
                rows, row_grad = _unique_rows(param.grad)
                if rows.numel():
                    self._update(param, rows, row_grad, state, group)
        return loss

    def _init_state(self, state: dict, param: Tensor, group: dict) -> None:
        raise NotImplementedError

    def _update(self, param: Tensor, rows: Tensor, row_grad: Tensor, state: dict,
                group: dict) -> None:
        raise NotImplementedError


class RowSparseAdam(_RowOptimizer):
    """Adam for parameters with sparse (row) gradients, such as `F.embedding(..., sparse=True)`."""

    dense_alternative = "torch.optim.Adam"

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        if not lr > 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not eps > 0.0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    def _init_state(self, state: dict, param: Tensor, group: dict) -> None:
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, param: Tensor, rows: Tensor, row_grad: Tensor, state: dict,
                group: dict) -> None:
        beta1, beta2 = group["betas"]
        exp_avg = state["exp_avg"].index_select(0, rows)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
        exp_avg.lerp_(row_grad, 1.0 - beta1)  # m = b1 m + (1 - b1) g
        exp_avg_sq.mul_(beta2).addcmul_(row_grad, row_grad, value=1.0 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        bias1 = 1.0 - beta1 ** state["step"]
        bias2 = 1.0 - beta2 ** state["step"]
        step_size = group["lr"] * math.sqrt(bias2) / bias1
        update = exp_avg.div_(exp_avg_sq.sqrt_().add_(group["eps"])).mul_(-step_size)
        param.index_add_(0, rows, update)  # rows are unique: one add per row


class RowWiseAdagrad(_RowOptimizer):
    """Row-wise Adagrad for parameters with sparse (row) gradients (FBGEMM's
    `EXACT_ROWWISE_ADAGRAD`). For each row r the batch touched, with g_r its summed gradient:

        state_sum[r] += mean(g_r ** 2)                  # one float per row
        weight[r]    -= lr * g_r / (sqrt(state_sum[r]) + eps)

    Rows the batch did not touch keep their weights and state. The accumulator starts at
    `initial_accumulator_value`."""

    dense_alternative = "torch.optim.Adagrad"

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-2, eps: float = 1e-8,
                 initial_accumulator_value: float = 0.0):
        if not lr > 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not eps > 0.0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if not initial_accumulator_value >= 0.0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        super().__init__(params, {"lr": lr, "eps": eps,
                                  "initial_accumulator_value": initial_accumulator_value})

    def _init_state(self, state: dict, param: Tensor, group: dict) -> None:
        state["state_sum"] = torch.full((param.shape[0],), group["initial_accumulator_value"],
                                        dtype=param.dtype, device=param.device)

    def _update(self, param: Tensor, rows: Tensor, row_grad: Tensor, state: dict,
                group: dict) -> None:
        # rows are unique: one add per row, then the rows' new sums
        state["state_sum"].index_add_(0, rows, row_grad.square().mean(dim=1))
        step = (state["state_sum"].index_select(0, rows).sqrt_().add_(group["eps"])
                .reciprocal_().mul_(-group["lr"]))  # per row: -lr / (sqrt(sum) + eps)
        param.index_add_(0, rows, row_grad * step.unsqueeze(1))


def _unique_rows(grad: Tensor) -> tuple[Tensor, Tensor]:
    """(rows, summed gradient of each row) of a sparse row gradient, coalesced or not."""
    indices, values = grad._indices()[0], grad._values()
    # coalesced, or rows already sorted and distinct (models.dlrm.unique_lookup's gradient):
    # a linear check instead of a sort
    if grad.is_coalesced() or indices.numel() < 2 or bool((indices[1:] > indices[:-1]).all()):
        return indices, values
    rows, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    summed = torch.zeros((rows.numel(), *values.shape[1:]), dtype=values.dtype,
                         device=values.device)
    return rows, summed.index_add_(0, inverse, values)
