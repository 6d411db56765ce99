"""What an architecture's step sees: :class:`StepContext`, and the :class:`Step` base class.

The engine builds one context per run and passes it to every ``d_step``/``g_step``. Steps never
hard-code a loss: they call ``ctx.d_loss``/``ctx.g_loss`` (or the ``ctx.discriminator_loss`` helper,
which adds the penalty), so ``--loss`` and ``--penalty`` work with every architecture.
"""

from __future__ import annotations

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

    # -- randomness -----------------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.hp.get("latent_dim", 0))

    def noise(self, n: int, dim: int | None = None) -> Tensor:
        """Standard normal latent codes ``[n, dim]`` (``dim`` defaults to ``hp['latent_dim']``)."""
        d = self.latent_dim if dim is None else dim
        return torch.randn(n, d, generator=self.generator, device=self.device)

    def random_labels(self, n: int) -> Tensor:
        return torch.randint(0, self.info.num_classes, (n,), generator=self.generator, device=self.device)

    def rand(self, *shape: int) -> Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.device)

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
        """The weighted penalty (gradient penalty, R1, ...), or None when the run has none."""
        if self.penalty is None or self.penalty_weight == 0:
            return None
        return self.penalty_weight * self.penalty.fn(critic, real, fake.detach(), generator=self.generator)

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


def set_requires_grad(nets: Mapping[str, nn.Module], names, flag: bool) -> None:
    for name in names:
        for p in nets[name].parameters():
            p.requires_grad_(flag)
