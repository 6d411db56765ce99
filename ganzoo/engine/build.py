"""Turning a resolved configuration into live objects: data, networks, step, context.

Shared by the trainer and by everything that reopens a run (eval, sample, export), so a run is
always rebuilt exactly the way it was trained.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..data.base import Dataset
from ..data.augment import load_run_data
from ..errors import GanzooError
from ..registry import Registry, get_registry
from ..specs import ArchitectureSpec
from .checkpoint import load_latest_checkpoint
from .config import critic_refusal
from .context import Step, StepContext
from .rundir import RunDir


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return torch.device(name)


@dataclass
class RunParts:
    cfg: dict[str, Any]
    spec: ArchitectureSpec
    dataset: Dataset
    nets: dict[str, nn.Module]
    step: Step
    ctx: StepContext
    device: torch.device
    ema: dict[str, nn.Module] = field(default_factory=dict)
    # what training batches are drawn from: ``dataset`` itself, or the same set at a larger load size
    # that batches are randomly cropped from (``load_size``; ``dataset`` is then its centre crop)
    train_data: Dataset | None = None

    def __post_init__(self) -> None:
        if self.train_data is None:
            self.train_data = self.dataset

    @property
    def generator_nets(self) -> tuple[str, ...]:
        return tuple(self.spec.groups["G"])

    def sample_nets(self) -> dict[str, nn.Module]:
        """The networks to sample from: EMA copies of the generators when the run keeps them."""
        return {**self.nets, **self.ema}


def build_run(cfg: Mapping[str, Any], registry: Registry | None = None, device: str | None = None,
              dataset: Dataset | None = None, quiet: bool = False) -> RunParts:
    registry = registry or get_registry()
    spec: ArchitectureSpec = registry.get("architecture", cfg["arch"])
    loss = registry.get("loss", cfg["loss"])
    penalty = None if cfg.get("penalty", "none") in ("none", "", None) else registry.get("penalty", cfg["penalty"])
    dev = pick_device(device or cfg.get("device", "auto"))

    train_data = dataset
    if dataset is None:
        dataset, train_data = load_run_data(cfg, registry, progress=not quiet)
    info = dataset.info
    if info.kind not in spec.data_kinds:
        raise GanzooError(
            f"'{spec.name}' trains on {' or '.join(spec.data_kinds)} data, but '{cfg['data']}' is {info.kind} data; "
            f"pick another --data (see 'ganzoo list datasets')"
        )
    if spec.needs_labels and not info.num_classes:
        raise GanzooError(
            f"'{spec.name}' needs labelled data, but '{cfg['data']}' has no labels; "
            "use digits, idx with a labels file, folder:PATH or cifar10:PATH"
        )
    if info.kind != "points" and min(info.height, info.width) < spec.min_image_size:
        raise GanzooError(
            f"'{spec.name}' needs images of at least {spec.min_image_size}px, got {info.height}x{info.width}; "
            f"pass --image-size {spec.min_image_size} or more"
        )

    # hyper-parameters a plugin added after the run was made take their defaults
    hp = {h.name: h.default for h in spec.hparams}
    hp.update(cfg.get("hparams", {}))
    torch.manual_seed(int(cfg.get("seed", 0)))
    try:
        nets = {k: v.to(dev) for k, v in dict(spec.build(info, hp)).items()}
    except GanzooError:
        raise
    except ValueError as exc:  # factories report impossible shapes this way
        raise GanzooError(f"cannot build '{spec.name}' for {info.name} ({info.height}x{info.width}): {exc}") from None
    missing = [n for g in ("G", "D") for n in spec.groups[g] if n not in nets]
    if missing:
        raise GanzooError(f"architecture '{spec.name}' did not build networks {missing}; report this to its plugin")
    why = critic_refusal(spec, penalty, nets)
    if why:
        raise GanzooError(why)
    step = spec.make_step(hp)
    noise = torch.Generator(device=dev)
    noise.manual_seed(int(cfg.get("seed", 0)) + 1)
    ctx = StepContext(
        nets=nets, hp=hp, info=info, device=dev, loss=loss, penalty=penalty,
        penalty_weight=float(cfg.get("penalty_weight", 0.0)) if penalty else 0.0,
        generator=noise, total_steps=int(cfg.get("steps", 0)),
    )
    parts = RunParts(dict(cfg), spec, dataset, nets, step, ctx, dev, train_data=train_data)
    if float(cfg.get("ema", 0.0)) > 0:
        parts.ema = {n: copy.deepcopy(nets[n]).eval().requires_grad_(False) for n in parts.generator_nets}
    return parts


def open_run(path: str, registry: Registry | None = None, device: str = "cpu", load_data: bool = True) -> tuple[RunParts, dict[str, Any]]:
    """Rebuild a finished (or interrupted) run from its directory and load its last checkpoint."""
    rd = RunDir(path)
    cfg = rd.read_config()
    state, _ = load_latest_checkpoint(rd.checkpoint_path.parent, map_location="cpu")
    parts = build_run(cfg, registry, device=device)
    load_weights(parts, state)
    for net in parts.nets.values():
        net.eval()
    return parts, state


def load_weights(parts: RunParts, state: Mapping[str, Any]) -> None:
    try:
        for name, net in parts.nets.items():
            net.load_state_dict(state["nets"][name])
        for name, net in parts.ema.items():
            if name in state.get("ema", {}):
                net.load_state_dict(state["ema"][name])
    except (KeyError, RuntimeError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise GanzooError(
            f"checkpoint does not match the '{parts.spec.name}' networks built from config.toml ({first}); "
            "was config.toml edited?"
        ) from None
