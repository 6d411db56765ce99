"""SyncBatchNorm that works on CPU (gloo) and CUDA, and is twice differentiable.

BatchNorm over the *global* batch of a data-parallel run: every process contributes its per-channel
sums to one all-reduce, so an N-process run normalises exactly as the 1-process run with the same
global batch does (Ioffe & Szegedy 2015; synchronised statistics as in Zhang et al. 2018,
"Context Encoding for Semantic Segmentation", and detectron2's ``NaiveSyncBatchNorm``).

Why not ``torch.nn.SyncBatchNorm``: it refuses CPU tensors (and DistributedDataParallel refuses it on
CPU modules), so it cannot run on gloo; and its backward uses kernels without derivatives
("derivative for batch_norm_backward_elemt is not implemented", pytorch/pytorch#61222), so a
BatchNorm critic trained with R1 or a gradient penalty (double backward: DCGAN's defaults) fails.
This one is written in differentiable tensor ops around a differentiable all-reduce. The state dict
is BatchNorm's (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``), so
checkpoints load into plain BatchNorm networks for evaluation, sampling and export.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import collective


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; its backward is itself (the gradient of a sum reaches every addend), and
    being built from ``apply`` again it stays differentiable for double backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = x.clone(memory_format=torch.contiguous_format)
        collective.run(dist.all_reduce, x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _AllReduceSum.apply(grad)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``x`` over all processes (same shape and dtype in every process)."""
    return _AllReduceSum.apply(x)


def _synced() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SyncBatchNorm(_BatchNorm):
    """BatchNorm with statistics over all processes' batches (training mode, world size > 1).

    Input ``[N, C, ...]`` (any number of trailing dims), any float dtype; statistics in float32,
    output in the input's dtype. In eval mode, or in one process, it is plain BatchNorm. One
    all-reduce of ``2C + 1`` numbers per call (per-channel shifted sums, sums of squares, count);
    the shift is the running mean, the same in every process, which keeps the one-pass variance
    accurate. Raises ValueError for inputs with fewer than 2 dims.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects [N, C, ...] inputs, got {x.dim()} dims")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _synced()):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        view = [1, c] + [1] * (x.dim() - 2)
        xf = x.float()
        shift = self.running_mean.detach().float() if self.running_mean is not None else xf.new_zeros(c)
        centred = xf - shift.view(view)
        count = xf.new_full((1,), float(x.numel() // c))
        total = all_reduce_sum(torch.cat([centred.sum(dims), centred.pow(2).sum(dims), count]))
        n = total[2 * c]
        mean_c = total[:c] / n
        var = (total[c : 2 * c] / n - mean_c.pow(2)).clamp_min(0.0)  # biased, as BatchNorm normalises
        mean = shift + mean_c
        y = (xf - mean.view(view)) * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            y = y * self.weight.float().view(view) + self.bias.float().view(view)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp_min(1.0))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), m)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by :class:`SyncBatchNorm` sharing its
    parameters and buffers (so optimisers and checkpoints see the same tensors); returns the new
    root when ``module`` itself is a BatchNorm layer."""
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child))
    return out


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in module.modules())
