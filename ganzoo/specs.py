"""Frozen spec dataclasses: what plugins hand to the registry.

This module imports no torch, so the registry and ``ganzoo list`` stay light. Callables inside a
spec (``build``, ``make_step``, ``d_loss`` ...) are only called by the engine, which imports torch.

Data kinds (``DatasetSpec.kind`` and ``ArchitectureSpec.data_kinds``):

* ``"points"``   -- 2D toy data, tensors ``[N, 2]``.
* ``"image"``    -- images ``[N, C, H, W]`` in [-1, 1], optionally with int64 labels ``[N]``.
* ``"unpaired"`` -- two image domains A and B (CycleGAN), each ``[N, C, H, W]`` in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

DATA_KINDS = ("points", "image", "unpaired")
HPARAM_TYPES = (int, float, bool, str)


@dataclass(frozen=True)
class HParam:
    """A typed hyper-parameter. It becomes a ``ganzoo train ARCH --NAME`` option and a ``--set`` key."""

    name: str
    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"hyper-parameter name {self.name!r} must be a Python identifier")
        if self.type not in HPARAM_TYPES:
            raise ValueError(f"hyper-parameter {self.name!r}: type must be one of int, float, bool, str")

    def parse(self, value: Any) -> Any:
        """Convert ``value`` (a string from the CLI, or a TOML value) to this type or raise ValueError."""
        if isinstance(value, str):
            text = value.strip()
            if self.type is bool:
                low = text.lower()
                if low in ("1", "true", "yes", "on"):
                    out: Any = True
                elif low in ("0", "false", "no", "off"):
                    out = False
                else:
                    raise ValueError(f"expected true/false, got {value!r}")
            elif self.type is int:
                out = int(text)
            elif self.type is float:
                out = float(text)
            else:
                out = text
        else:
            if self.type is bool and not isinstance(value, bool):
                raise ValueError(f"expected true/false, got {value!r}")
            if self.type is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"expected an integer, got {value!r}")
            if self.type is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"expected a number, got {value!r}")
            if self.type is str and not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            out = self.type(value)
        if self.choices and out not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}, got {value!r}")
        return out


@dataclass(frozen=True)
class OptimizerSpec:
    """Optimiser settings for one group ("G" or "D"). ``name`` is "adam" or "rmsprop"."""

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0


@dataclass(frozen=True)
class ExportSpec:
    """One network to export to ONNX, following the ONNX I/O contract in the docs.

    ``inputs`` is ``("z",)``, ``("z", "labels")`` or ``("image",)`` and matches the network's
    ``forward`` signature; ``output`` is ``"image"`` or ``"points"``.

    ``dynamic_size`` (image-to-image networks only): the network is fully convolutional, mapping
    ``[N, C, H, W]`` to ``[N, C', H, W]`` for any ``H`` and ``W`` that are multiples of
    ``size_multiple`` and at least ``min_size``; it is exported with symbolic height and width (a
    photo translates at its own size) and checked at the training size and at another, non-square
    one. ``size_multiple`` and ``min_size`` are ints, or callables given the built network (an
    ``nn.Module``) returning ints, for sizes that depend on hyper-parameters (CycleGAN: 2^downsamplings).
    """

    network: str
    inputs: tuple[str, ...] = ("z",)
    output: str = "image"
    description: str = ""
    dynamic_size: bool = False
    size_multiple: int | Callable[[Any], int] = 1
    min_size: int | Callable[[Any], int] = 1


@dataclass(frozen=True)
class ArchitectureSpec:
    """An architecture plugin.

    ``build(info, hp)`` returns ``{name: nn.Module}`` given a :class:`ganzoo.api.DataInfo` and the
    resolved hyper-parameters. ``make_step(hp)`` returns a :class:`ganzoo.api.Step` whose
    ``d_step``/``g_step`` compute named loss tensors. ``groups`` maps the two optimiser groups the
    engine knows, "G" and "D", to network names.
    """

    name: str
    summary: str
    build: Callable[..., Mapping[str, Any]]
    make_step: Callable[..., Any]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {"G": ("G",), "D": ("D",)})
    data_kinds: tuple[str, ...] = ("points", "image")
    needs_labels: bool = False
    default_data: str = "ring8"
    default_loss: str = "ns"
    default_penalty: str | None = None
    n_critic: int = 1
    optimizers: Mapping[str, OptimizerSpec] = field(
        default_factory=lambda: {"G": OptimizerSpec(), "D": OptimizerSpec()}
    )
    hparams: tuple[HParam, ...] = ()
    exports: tuple[ExportSpec, ...] = (ExportSpec("G"),)
    # Losses/penalties this architecture refuses, each with the reason shown to the user.
    incompatible: Mapping[str, str] = field(default_factory=dict)
    # Optional learning-rate multiplier lr_factor(step, total_steps) -> float (e.g. linear decay).
    lr_factor: Callable[[int, int], float] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)  # train-config defaults (batch_size, steps, ...)
    # Defaults for one kind of data ("points", "image", "unpaired"), keys as for ``--set`` (run keys
    # including "loss", "penalty" and "penalty_weight", or hyper-parameter names), applied over
    # ``defaults`` and the optimizer specs when the run's data is of that kind; the loss's and
    # penalty's suggestions, a variant, --config and the user's options still sit above them. A loss
    # or penalty named here counts as the architecture's own for that kind (its suggestions are not
    # applied). E.g. vanilla: {"points": {"loss": "lsgan", "latent_dim": 2, "ema": 0.99}}.
    # ``ganzoo info ARCH`` and ``ganzoo train ARCH --help`` show them.
    data_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Defaults for one image size (the side in px the run trains at, once chosen: see
    # ganzoo/engine/image_size.py), keys as for ``--set`` except data, image_size, loss, penalty and
    # variant; applied over ``defaults`` and ``data_defaults``, below everything else, like them. For
    # settings that a larger image needs, e.g. dcgan: {28: {"steps": 12000}} (MNIST-size data needs more
    # steps than the 16 px digits to reach the same quality). ``ganzoo info ARCH`` shows them and the
    # run's first line says when they applied.
    size_defaults: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    min_image_size: int = 1
    paper: str = ""
    # Named bundles of settings picked with ``--set variant=NAME``: keys as for ``--set`` (run keys such
    # as "optimizer", "lr_d", "penalty", or hyper-parameter names). They sit above the loss's and the
    # penalty's suggestions; the user's own options still win. E.g. WGAN's {"clip": {...}}.
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # ``critic_constraint(hp) -> bool``: called with the run's resolved hyper-parameters (a dict, name
    # -> value) before any network is built; True when the architecture's own step keeps its critic
    # Lipschitz for these hyper-parameters (weight clipping in ``Step.after_d_update`` with clip > 0,
    # spectral norm ...), so a loss that needs a constraint (``LossSpec.needs_lipschitz``, e.g. wgan)
    # may run without a Lipschitz penalty. WGAN: ``lambda hp: hp["clip"] > 0``.
    critic_constraint: Callable[[Mapping[str, Any]], bool] | None = None
    # Settings (keys as for ``--set``) for the smallest sensible model: small widths, small images.
    # The zoo test (tests/test_zoo.py) trains every architecture with them for a few steps.
    tiny: Mapping[str, Any] = field(default_factory=dict)

    def hparam(self, name: str) -> HParam | None:
        for hp in self.hparams:
            if hp.name == name:
                return hp
        return None


@dataclass(frozen=True)
class LossSpec:
    """An adversarial loss. ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)`` take raw
    discriminator outputs (any shape; reduce with a mean) and return scalar tensors.

    ``suggested`` lists optimiser hints applied over the architecture's defaults (keys: ``n_critic``,
    ``betas``, ``lr``, ``optimizer``) unless the user sets them.

    ``g_uses_real``: the generator loss also compares with the discriminator's outputs on real data
    (relativistic losses), so it is called ``g_loss(fake_out, real_out)``. Steps that compute the
    generator loss with ``ctx.generator_loss`` (or pass ``real_out`` to ``ctx.g_loss``) support it.
    """

    name: str
    summary: str
    d_loss: Callable[..., Any]
    g_loss: Callable[..., Any]
    suggested: Mapping[str, Any] = field(default_factory=dict)
    paper: str = ""
    g_uses_real: bool = False
    # True when the loss is unbounded without a Lipschitz critic (wgan): the run is refused unless a
    # penalty with ``lipschitz=True`` or the architecture's ``critic_constraint`` provides one.
    needs_lipschitz: bool = False


@dataclass(frozen=True)
class PenaltySpec:
    """A regulariser added to the discriminator loss (gradient penalty, R1, ...).

    ``fn(critic, real, fake, generator=None)`` returns a scalar tensor; the engine multiplies it by the
    run's ``penalty_weight`` and adds it to the discriminator loss (``StepContext.penalty_term``).

    * ``critic`` maps a batch of inputs to raw discriminator outputs (a closure over labels for
      conditional critics), so the penalty can differentiate through it;
    * ``real`` is the real batch and ``fake`` the generated one, **already detached** from the
      generator (``fake.detach()``): no gradient reaches the generator through a penalty;
    * ``generator`` is the run's seeded ``torch.Generator`` (on the run's device): draw any random
      numbers (interpolation weights) from it so runs stay reproducible; a ``fn`` that also takes a
      ``rand`` keyword gets ``ctx.rand`` (``rand(n, *shape)``), whose draws do not depend on the
      number of processes of a data-parallel run;
    * the penalty runs in the discriminator step only and must not step any optimiser.

    ``weight`` is the default ``penalty_weight``. Which weight a run uses, lowest first: this
    ``weight``; the architecture's own ``penalty_weight`` (its ``defaults`` / ``data_defaults``) but
    only when the run uses the architecture's own default penalty — e.g. ``--penalty r1`` on an
    architecture whose default penalty is r1 keeps the weight it was tuned with, while any other
    penalty brings its own ``weight``; then ``--config`` and ``--set penalty_weight=``.

    ``suggested``: optimiser hints (``n_critic``, ``betas``, ``lr``, ``optimizer``) applied when the
    penalty is not the architecture's default one, below the user's settings (as for losses).
    ``lipschitz``: True when it keeps the critic (softly) 1-Lipschitz, as the gradient penalty does;
    a loss with ``needs_lipschitz`` (wgan) accepts it. ``per_sample``: True when each sample's
    gradient must depend on that sample alone, so a critic with BatchNorm (which mixes a batch) is
    refused when the networks are built (gp: Gulrajani et al. 2017, sec. 4).
    """

    name: str
    summary: str
    fn: Callable[..., Any]
    weight: float = 10.0
    suggested: Mapping[str, Any] = field(default_factory=dict)
    paper: str = ""
    lipschitz: bool = False
    per_sample: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """A data set. Embedded sets have ``takes_path=False`` and are named ``--data NAME``; file formats
    have ``takes_path=True`` and are named ``--data NAME:PATH``.

    ``load(request)`` gets a :class:`ganzoo.api.DataRequest` and returns a :class:`ganzoo.api.Dataset`.
    ``native_size(request)``, optional, tells cheaply (headers only, nothing decoded) the one
    ``(height, width)`` every image of the set has, or returns None when the sizes differ or cannot be
    told; it must not raise for bad paths (``load`` reports those). The engine trains at that size
    when the architecture can build it (see :mod:`ganzoo.engine.image_size`).
    """

    name: str
    summary: str
    kind: str
    load: Callable[..., Any]
    takes_path: bool = False
    labelled: bool = False
    native_size: Callable[..., Any] | None = None


SPEC_TYPES = {
    "architecture": ArchitectureSpec,
    "loss": LossSpec,
    "penalty": PenaltySpec,
    "dataset": DatasetSpec,
}
