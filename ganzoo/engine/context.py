"""What an architecture's step sees: :class:`StepContext`, and the :class:`Step` base class.

The engine builds one context per run and passes it to every ``d_step``/``g_step``. Steps never
hard-code a loss: they call ``ctx.d_loss``/``ctx.g_loss`` (or the ``ctx.discriminator_loss`` helper,
which adds the penalty), so ``--loss`` and ``--penalty`` work with every architecture.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..data.base import Batch, DataInfo, Dataset
from ..errors import GanzooError
from ..specs import LossSpec, PenaltySpec

Tensor = torch.Tensor


@dataclass
class StepContext:
    nets: dict[str, nn.Module]
    hp: Mapping[str, Any]
    info: DataInfo
    device: torch.device
    loss: LossSpec
    penalty: PenaltySpec | None = None
    penalty_weight: float = 0.0
    generator: torch.Generator | None = None  # noise for training steps (on ``device``)
    step: int = 0
    total_steps: int = 0
    autocast: Callable[[], Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    # Data-parallel training (torchrun): this process's rank, the number of processes, and the
    # engine's all-gather of a batch across them (None in one process). Steps never read these:
    # the draws and the batch helpers below use them.
    rank: int = 0
    world_size: int = 1
    all_gather: Callable[[Tensor], Tensor] | None = None

    # -- randomness -----------------------------------------------------------------------------
    # Every draw below is made for the *global* batch: ``n`` is this process's share of it, the
    # context draws ``n * world_size`` rows (identically in every process, whose generators stay in
    # step) and returns this process's rows. A run with N processes thus sees the latent codes,
    # labels and penalty mixing of the 1-process run with the same global batch.
    @property
    def latent_dim(self) -> int:
        return int(self.hp.get("latent_dim", 0))

    def _mine(self, draw: Callable[[int], Tensor], n: int) -> Tensor:
        if self.world_size == 1:
            return draw(n)
        return draw(n * self.world_size)[self.rank * n : (self.rank + 1) * n]

    def noise(self, n: int, dim: int | None = None) -> Tensor:
        """Standard normal latent codes float32 ``[n, dim]`` on ``device`` (``dim`` defaults to
        ``hp['latent_dim']``); ``n`` counts this process's samples (see the note above)."""
        d = self.latent_dim if dim is None else dim
        return self._mine(lambda k: torch.randn(k, d, generator=self.generator, device=self.device), n)

    def random_labels(self, n: int) -> Tensor:
        """Uniform class labels int64 ``[n]`` in ``[0, num_classes)`` on ``device``."""
        k = self.info.num_classes
        return self._mine(lambda m: torch.randint(0, k, (m,), generator=self.generator, device=self.device), n)

    def rand(self, n: int, *shape: int) -> Tensor:
        """Uniform [0, 1) float32 ``[n, *shape]`` on ``device``; ``n`` counts this process's samples."""
        return self._mine(lambda m: torch.rand(m, *shape, generator=self.generator, device=self.device), n)

    # -- the global batch (identity in one process) ------------------------------------------------
    def gather_batch(self, x: Tensor) -> Tensor:
        """The global batch ``[n * world_size, ...]``: every process's ``x`` ``[n, ...]`` in rank
        order, without gradient. For state a step keeps across the whole batch (CycleGAN's image
        pool, a data-dependent initialisation); ``x`` itself in one process."""
        return x.detach() if self.all_gather is None else self.all_gather(x.detach())

    def local_batch(self, x: Tensor) -> Tensor:
        """This process's rows ``[n, ...]`` of a global-batch tensor ``[n * world_size, ...]``
        (the inverse of :meth:`gather_batch`); ``x`` itself in one process."""
        if self.world_size == 1:
            return x
        n = x.shape[0] // self.world_size
        return x[self.rank * n : (self.rank + 1) * n]

    # -- losses ---------------------------------------------------------------------------------
    def d_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self.loss.d_loss(real_out, fake_out)

    def g_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """The generator loss; ``real_out`` (outputs on real data) is used by relativistic losses."""
        if not self.loss.g_uses_real:
            return self.loss.g_loss(fake_out)
        if real_out is None:
            raise GanzooError(
                f"loss '{self.loss.name}' compares fake with real outputs in the generator step, which this "
                "architecture's step does not provide; pick another --loss"
            )
        return self.loss.g_loss(fake_out, real_out)

    def generator_loss(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``{"loss"}`` for the generator against one discriminator; ``critic`` sees ``real`` only
        when the loss needs it (relativistic losses). Gradients flow through ``fake``."""
        real_out = None
        if self.loss.g_uses_real:
            with torch.no_grad():
                real_out = critic(real)
        return {"loss": self.g_loss(critic(fake), real_out)}

    def penalty_term(self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor | None:
        """The weighted penalty (gradient penalty, R1, ...), or None when the run has none. A penalty
        function that takes a ``rand`` keyword gets :meth:`rand` for its random mixing, so its draws
        do not depend on the number of processes either."""
        if self.penalty is None or self.penalty_weight == 0:
            return None
        kw: dict[str, Any] = {"generator": self.generator}
        if _takes_rand(self.penalty.fn):
            kw["rand"] = self.rand
        return self.penalty_weight * self.penalty.fn(critic, real, fake.detach(), **kw)

    def discriminator_loss(
        self, critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor
    ) -> dict[str, Tensor]:
        """``{"loss", "adv"[, "penalty"]}`` for one discriminator: loss on real vs detached fake,
        plus the run's penalty. ``critic`` maps inputs to outputs (close over labels if any)."""
        fake = fake.detach()
        out = {"adv": self.d_loss(critic(real), critic(fake))}
        pen = self.penalty_term(critic, real, fake)
        out["loss"] = out["adv"] if pen is None else out["adv"] + pen
        if pen is not None:
            out["penalty"] = pen
        return out


@dataclass
class Preview:
    """What a step shows in ``samples/step_XXXXXX.png``: images ``[N, C, H, W]`` laid out ``nrow``
    per row, or points ``[N, 2]`` scattered over the real data."""

    images: Tensor | None = None
    nrow: int = 8
    points: Tensor | None = None
    caption: str = ""


class Step:
    """Base class for an architecture's training step.

    Subclasses implement :meth:`d_step` and :meth:`g_step`, each returning a dict of scalar tensors
    that contains ``"loss"`` (what the engine back-propagates); other entries are logged. The
    defaults of the other methods fit a noise-to-sample generator called ``generator_net`` taking
    ``z`` (and ``labels`` when ``uses_labels``).
    """

    generator_net = "G"
    uses_labels = False
    # Image-to-image steps (CycleGAN) set this and implement translate(); metrics and sampling use it.
    image_to_image = False
    directions: dict[str, str] = {}  # e.g. {"AB": "G_AB", "BA": "G_BA"}: direction -> generator net

    def __init__(self, hp: Mapping[str, Any]):
        self.hp = dict(hp)

    def d_step(self, ctx: StepContext, batch: Batch) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def g_step(self, ctx: StepContext, batch: Batch) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def after_d_update(self, ctx: StepContext) -> None:
        """Called after each discriminator optimiser step (e.g. weight clipping)."""

    def generate(
        self,
        ctx: StepContext,
        z: Tensor,
        labels: Tensor | None = None,
        nets: Mapping[str, nn.Module] | None = None,
    ) -> Tensor:
        """Samples from latent codes (and labels), using ``nets`` (e.g. the EMA copies) if given."""
        g = (nets or ctx.nets)[self.generator_net]
        return g(z, labels) if self.uses_labels else g(z)

    def translate(
        self, ctx: StepContext, images: Tensor, direction: str = "AB", nets: Mapping[str, nn.Module] | None = None
    ) -> Tensor:
        """Image-to-image steps: translate ``images`` (in [-1, 1]) in ``direction`` ("AB" or "BA")."""
        if not self.image_to_image:
            raise NotImplementedError(f"{type(self).__name__} is not an image-to-image step")
        return (nets or ctx.nets)[self.directions[direction]](images)

    def fixed_inputs(self, ctx: StepContext, dataset: Dataset, n: int, seed: int) -> dict[str, Tensor]:
        """Inputs kept fixed for the whole run so sample grids are comparable step to step."""
        gen = torch.Generator().manual_seed(seed)
        out: dict[str, Tensor] = {}
        if self.uses_labels and ctx.info.num_classes:
            k = ctx.info.num_classes
            per = max(1, n // k)
            out["labels"] = torch.arange(k).repeat_interleave(per)
            out["z"] = torch.randn(k * per, ctx.latent_dim, generator=gen)
            out["nrow"] = torch.tensor(per)
        else:
            out["z"] = torch.randn(n, ctx.latent_dim, generator=gen)
        return out

    def preview(self, ctx: StepContext, fixed: Mapping[str, Tensor], nets: Mapping[str, nn.Module] | None = None) -> Preview:
        z = fixed["z"].to(ctx.device)
        labels = fixed.get("labels")
        labels = None if labels is None else labels.to(ctx.device)
        out = self.generate(ctx, z, labels, nets=nets).detach().float().cpu()
        if ctx.info.kind == "points":
            return Preview(points=out)
        nrow = int(fixed["nrow"]) if "nrow" in fixed else max(1, int(round(len(out) ** 0.5)))
        return Preview(images=out, nrow=nrow)

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint (tensors, numbers, lists; loaded with weights_only)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def _takes_rand(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return "rand" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def set_requires_grad(nets: Mapping[str, nn.Module], names, flag: bool) -> None:
    for name in names:
        for p in nets[name].parameters():
            p.requires_grad_(flag)
