"""Resolving a run's configuration.

Precedence, lowest first: engine defaults -> the architecture's defaults -> its defaults for the kind
of data (``data_defaults``) and for the image size the run trains at (``size_defaults``) -> the
loss's and the penalty's suggestions (only for a loss or penalty other than the architecture's own
default, whose settings it has tuned) -> the architecture's variant
(``--set variant=NAME``) -> ``--config FILE.toml`` -> command-line options and ``--set key=value``.
The resolved configuration is written to ``config.toml`` in the run directory and is itself a valid
``--config`` file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Mapping

from ..errors import GanzooError, did_you_mean
from ..registry import Registry
from ..specs import ArchitectureSpec, HParam

# key -> (type, default, help). ``None`` defaults are filled from the specs.
FIELDS: dict[str, tuple[type, Any, str]] = {
    "arch": (str, None, "architecture name"),
    "loss": (str, None, "adversarial loss (default: the architecture's)"),
    "penalty": (str, None, "discriminator penalty, 'none' for none (default: the architecture's)"),
    "penalty_weight": (float, None, "penalty weight (default: the penalty's)"),
    "data": (str, None, "data set NAME or FORMAT:PATH"),
    "image_size": (int, 0, "image size in pixels (0: the data's native size)"),
    "steps": (int, 2000, "total training steps (generator updates) of the run"),
    "batch_size": (int, 64, "batch size"),
    "n_critic": (int, None, "discriminator updates per generator update"),
    "optimizer": (str, None, "adam or rmsprop"),
    "lr_g": (float, None, "generator learning rate"),
    "lr_d": (float, None, "discriminator learning rate"),
    "beta1": (float, None, "Adam beta1"),
    "beta2": (float, None, "Adam beta2"),
    "seed": (int, 0, "random seed"),
    "device": (str, "auto", "auto, cpu, cuda or cuda:N"),
    "ema": (float, 0.0, "EMA decay of the generator weights (0: off)"),
    "lr_decay": (float, 1.0, "fraction of the run after which both learning rates fall linearly to 0 "
                 "(1: constant; an architecture with its own schedule ignores it)"),
    "amp": (bool, False, "bfloat16 autocast on CUDA"),
    "sample_every": (int, 0, "write a sample grid every K steps (0: about 10 per run, every steps // 10)"),
    "checkpoint_every": (int, 0, "checkpoint every K steps (0: about 4 per run, every steps // 4); always at the end"),
    "log_every": (int, 25, "log losses to metrics.jsonl every K steps"),
    "keep_checkpoints": (int, 2, "checkpoints/step_XXXXXX.pt files kept, newest first (0: all); last.pt is the newest"),
    "tensorboard": (bool, True, "write TensorBoard events into the run directory (needs ganzoo[tensorboard])"),
    "eval_samples": (int, 2500, "samples drawn for end-of-run metrics"),
    "variant": (str, "", "a named bundle of settings the architecture offers (see 'ganzoo info ARCH')"),
    # data-parallel and GPU options (docs/distributed.md)
    "sync_bn": (bool, True, "with several processes, BatchNorm uses the statistics of the global batch "
                "(false: each process its own share, and the run no longer matches the 1-process run)"),
    "cudnn_benchmark": (bool, True, "CUDA: let cuDNN pick the fastest convolution algorithms"),
    "fused_adam": (bool, True, "CUDA: Adam's fused kernel"),
    "channels_last": (bool, False, "networks and image batches in channels-last (NHWC) memory order"),
    "compile": (bool, False, "torch.compile the generators (and the critics when the run has no penalty)"),
    # data (ganzoo/data: cache, decoding, augmentation)
    "image_channels": (int, 0, "image channels (--channels): 1 (grey) or 3 (RGB); 0: the data's own"),
    "data_cache": (bool, True, "keep decoded image sets in the data cache ($GANZOO_CACHE, 'ganzoo cache')"),
    "data_workers": (int, 0, "threads decoding image files (0: every core)"),
    "skip_bad_images": (bool, False, "leave unreadable image files out (listed in skipped_images.txt) instead of stopping"),
    "augment": (str, "none", "per-batch augmentation on the device: none or flip (random horizontal flip)"),
    "load_size": (int, 0, "decode images at this size and train on random image_size crops (0: off)"),
    "load_scale": (float, 1.0, "load_size as a multiple of image_size, when load_size is 0 (1: off)"),
    "augment_min_size": (int, 0, "augment and load_scale apply only to images of at least this many pixels "
                         "(0: any size); an explicit load_size always applies"),
    "threads": (int, 0, "PyTorch intra-op CPU threads (0: auto, from the free cores and the work per step; "
                "OMP_NUM_THREADS also sets it)"),
}
OPTIMIZERS = ("adam", "rmsprop")


_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _why(exc: Exception, typ: type, value: Any) -> str:
    """A parse failure in words: 'expected an integer, got 'abc'' rather than int()'s message."""
    text = str(exc)
    return text if text.startswith("expected") else f"expected {_EXPECTED.get(typ, typ.__name__)}, got {value!r}"


def _parse(key: str, typ: type, value: Any, source: str = "--set") -> Any:
    probe = HParam(key if key.isidentifier() else "value", typ, None)
    try:
        return probe.parse(value)
    except (ValueError, TypeError) as exc:
        raise GanzooError(f"{source} {key}: {_why(exc, typ, value)}") from None


def valid_keys(arch: ArchitectureSpec) -> list[str]:
    return sorted(set(FIELDS) | {h.name for h in arch.hparams})


def parse_assignment(arch: ArchitectureSpec, text: str) -> tuple[str, str, Any]:
    """``key=value`` -> (section, key, parsed value); section is "run" or "hparams"."""
    if "=" not in text:
        raise GanzooError(f"--set '{text}': expected key=value, e.g. --set lr_d=1e-4")
    key, value = (s.strip() for s in text.split("=", 1))
    return resolve_key(arch, key, value, source="--set")


def resolve_key(arch: ArchitectureSpec, key: str, value: Any, source: str = "--set") -> tuple[str, str, Any]:
    bare = key[len("hparams."):] if key.startswith("hparams.") else key
    hp = arch.hparam(bare)
    if hp is not None and (key.startswith("hparams.") or bare not in FIELDS):
        try:
            return "hparams", bare, hp.parse(value)
        except (ValueError, TypeError) as exc:
            raise GanzooError(f"{source} {bare}: {_why(exc, hp.type, value)}") from None
    if key in FIELDS:
        return "run", key, _parse(key, FIELDS[key][0], value, source)
    keys = valid_keys(arch)
    raise GanzooError(
        f"{source}: unknown key '{key}'{did_you_mean(key, keys)} for '{arch.name}'; "
        f"valid keys: {', '.join(keys)}"
    )


def read_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise GanzooError(f"config file {p} does not exist; pass an existing TOML file to --config")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GanzooError(f"config file {p} is not valid TOML: {exc}") from None


def flatten_user(arch: ArchitectureSpec, file_cfg: Mapping[str, Any], cli: Mapping[str, Any]) -> tuple[dict, dict]:
    """Merge a config file and CLI values into (run, hparams) dicts of user choices, type-checked."""
    run: dict[str, Any] = {}
    hps: dict[str, Any] = {}
    for source, mapping in (("--config", file_cfg), ("option", cli)):
        for key, value in mapping.items():
            if value is None:
                continue
            if key == "hparams" and isinstance(value, Mapping):
                for k, v in value.items():
                    _, k2, parsed = resolve_key(arch, "hparams." + k, v, source)
                    hps[k2] = parsed
                continue
            if key in ("ganzoo_version", "plugin", "created", "decisions"):  # records, not settings
                continue
            section, k2, parsed = resolve_key(arch, key, value, source)
            (hps if section == "hparams" else run)[k2] = parsed
    return run, hps


def variant_settings(arch: ArchitectureSpec, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (run, hparams) settings of ``--set variant=NAME``; ({}, {}) for no variant."""
    if not name:
        return {}, {}
    if name not in arch.variants:
        offered = ", ".join(sorted(arch.variants)) or "none"
        raise GanzooError(
            f"--set variant={name}: '{arch.name}' has no variant '{name}'{did_you_mean(name, arch.variants)}; "
            f"its variants: {offered}"
        )
    run: dict[str, Any] = {}
    hps: dict[str, Any] = {}
    for key, value in arch.variants[name].items():
        section, k2, parsed = resolve_key(arch, key, value, source=f"variant '{name}' of '{arch.name}':")
        (hps if section == "hparams" else run)[k2] = parsed
    return run, hps


def data_kind_settings(registry: Registry, arch: ArchitectureSpec, data: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (run, hparams) settings of ``arch.data_defaults`` for the kind of ``data`` (NAME or
    FORMAT:PATH); ({}, {}) when there are none or the data set is unknown (loading reports that)."""
    name = str(data).split(":", 1)[0].strip()
    if not arch.data_defaults or name not in registry.names("dataset"):
        return {}, {}
    kind = registry.get("dataset", name).kind
    run: dict[str, Any] = {}
    hps: dict[str, Any] = {}
    for key, value in arch.data_defaults.get(kind, {}).items():
        section, k2, parsed = resolve_key(arch, key, value, source=f"data_defaults['{kind}'] of '{arch.name}':")
        (hps if section == "hparams" else run)[k2] = parsed
    return run, hps


def incompatibility(registry: Registry, arch: ArchitectureSpec, loss: str, penalty: str,
                    hp: Mapping[str, Any] | None = None) -> str | None:
    """Why ``arch`` cannot train with ``loss`` and ``penalty`` ("none" for none), or None when it can.

    Rules: the architecture's own ``incompatible`` mapping (e.g. a BatchNorm critic refuses the
    per-sample gradient penalty), and a loss that needs a Lipschitz critic (``wgan``) needs a penalty
    that provides one (``gp``) or the architecture's own constraint (weight clipping) for ``hp``.
    """
    for name in (loss, penalty):
        if name in arch.incompatible:
            return f"'{arch.name}' cannot train with '{name}': {arch.incompatible[name]}"
    loss_spec = registry.get("loss", loss)
    pen_spec = None if penalty == "none" else registry.get("penalty", penalty)
    if loss_spec.needs_lipschitz and not (pen_spec is not None and pen_spec.lipschitz):
        if arch.critic_constraint is not None and arch.critic_constraint(dict(hp or {})):
            return None
        fixes = [f"--penalty {p.name}" for p in (e.spec for e in registry.entries("penalty")) if p.lipschitz]
        if arch.critic_constraint is not None:
            fixes += [f"--set variant={v}" for v in sorted(arch.variants)
                      if arch.critic_constraint({**dict(hp or {}), **variant_settings(arch, v)[1]})]
        with_pen = "no penalty" if penalty == "none" else f"--penalty {penalty}"
        return (
            f"loss '{loss}' needs a Lipschitz critic, which '{arch.name}' with {with_pen} does not have "
            f"(the critic's scores grow without bound); use {' or '.join(fixes) or 'another --loss'}"
        )
    return None


def critic_refusal(arch: ArchitectureSpec, penalty: Any, nets: Mapping[str, Any]) -> str | None:
    """Why the built critic cannot take ``penalty`` (a PenaltySpec or None), or None when it can:
    a per-sample penalty (gp) with a BatchNorm critic, whose scores mix the samples of a batch."""
    if penalty is None or not penalty.per_sample:
        return None
    from torch.nn.modules.batchnorm import _BatchNorm

    for name in arch.groups["D"]:
        if any(isinstance(m, _BatchNorm) for m in nets[name].modules()):
            return (
                f"penalty '{penalty.name}' needs per-sample critic scores, but critic '{name}' of '{arch.name}' "
                "uses BatchNorm, which mixes the samples of a batch (Gulrajani et al. 2017, sec. 4); use another "
                f"--penalty or a critic without BatchNorm (see 'ganzoo info {arch.name}')"
            )
    return None


def resolve(registry: Registry, arch: ArchitectureSpec, run: Mapping[str, Any], hps: Mapping[str, Any]) -> dict[str, Any]:
    """The complete configuration of a run, validated."""
    cfg: dict[str, Any] = {k: v[1] for k, v in FIELDS.items()}
    cfg.update(arch.defaults)
    cfg["arch"] = arch.name
    var_run, var_hps = variant_settings(arch, run.get("variant") or "")
    cfg["data"] = run.get("data") or var_run.get("data") or arch.defaults.get("data") or arch.default_data
    kind_run, kind_hps = data_kind_settings(registry, arch, cfg["data"])
    cfg["loss"] = run.get("loss") or var_run.get("loss") or kind_run.get("loss") or arch.default_loss
    pen = run["penalty"] if "penalty" in run else var_run.get("penalty", kind_run.get("penalty", arch.default_penalty))
    cfg["penalty"] = "none" if pen in (None, "", "none") else pen

    loss = registry.get("loss", cfg["loss"])
    penalty = None if cfg["penalty"] == "none" else registry.get("penalty", cfg["penalty"])
    hp = {h.name: h.default for h in arch.hparams}
    hp.update(kind_hps)
    hp.update(var_hps)
    hp.update(hps)
    why = incompatibility(registry, arch, cfg["loss"], cfg["penalty"], hp)
    if why:
        raise GanzooError(why)

    g, d = arch.optimizers["G"], arch.optimizers["D"]
    cfg.update(optimizer=g.name, lr_g=g.lr, lr_d=d.lr, beta1=g.betas[0], beta2=g.betas[1], n_critic=arch.n_critic)
    cfg.update({k: v for k, v in kind_run.items() if k not in ("data", "loss", "penalty")})
    # A loss's (penalty's) suggestions adapt an architecture to a loss it was not tuned for; with its
    # own default loss (penalty) the architecture's defaults are already the tuned ones and stay.
    own_loss = kind_run.get("loss") or arch.default_loss
    own_pen = kind_run.get("penalty", arch.default_penalty) or "none"
    # ... and so does the weight it tuned for its own penalty (``penalty_weight`` in its defaults).
    tuned = kind_run.get("penalty_weight", arch.defaults.get("penalty_weight"))
    own_weight = cfg["penalty"] == own_pen and tuned is not None
    cfg["penalty_weight"] = (float(tuned) if own_weight else penalty.weight) if penalty else 0.0
    above: set[str] = set()  # run keys set above the architecture's own defaults
    for suggested in (loss.suggested if cfg["loss"] != own_loss else {},
                      penalty.suggested if penalty and cfg["penalty"] != own_pen else {}):
        for key, value in suggested.items():
            if key == "betas":
                cfg["beta1"], cfg["beta2"] = value
                above |= {"beta1", "beta2"}
            elif key == "lr":
                cfg["lr_g"] = cfg["lr_d"] = value
                above |= {"lr_g", "lr_d"}
            elif key in FIELDS:
                cfg[key] = value
                above.add(key)
    cfg.update({k: v for k, v in var_run.items() if k not in ("data", "loss", "penalty")})
    cfg.update({k: v for k, v in run.items() if v is not None})
    above |= set(var_run) | {k for k, v in run.items() if v is not None}
    cfg["hparams"] = hp
    _decide_image_size(registry, arch, cfg, [(run, "set by you"), (var_run, f"variant '{cfg['variant']}'"),
                                              (kind_run, f"'{arch.name}' data_defaults")])
    _apply_size_defaults(arch, cfg, above, set(var_hps) | set(hps))
    _check(cfg)
    return cfg


# Keys a ``size_defaults`` entry may not set: they decide the image size, or are chosen before it.
NOT_PER_SIZE = ("data", "image_size", "loss", "penalty", "variant")


def size_settings(arch: ArchitectureSpec) -> dict[Any, tuple[dict[str, Any], dict[str, Any]]]:
    """Every entry of ``arch.size_defaults`` as {size: (run, hparams) settings}, validated; {} when it
    has none. Raises GanzooError naming the entry for a side that is not a positive int, a key it
    cannot set or a value of the wrong type."""
    out: dict[Any, tuple[dict[str, Any], dict[str, Any]]] = {}
    for size, settings in arch.size_defaults.items():
        source = f"size_defaults[{size!r}] of '{arch.name}':"
        if not isinstance(size, int) or isinstance(size, bool) or size < 1 or not isinstance(settings, Mapping):
            raise GanzooError(f"{source} expected a positive image side in px mapped to {{key: value}}, "
                              f"got {size!r}: {settings!r}; report this to the plugin's authors")
        run: dict[str, Any] = {}
        hps: dict[str, Any] = {}
        for key, value in settings.items():
            if key in NOT_PER_SIZE:
                raise GanzooError(f"{source} '{key}' cannot depend on the image size (it is chosen before the size); "
                                  f"set it in the architecture's defaults or data_defaults")
            section, k2, parsed = resolve_key(arch, key, value, source=source)
            (hps if section == "hparams" else run)[k2] = parsed
        out[size] = (run, hps)
    return out


def _apply_size_defaults(arch: ArchitectureSpec, cfg: dict[str, Any], run_above: set[str], hps_above: set[str]) -> None:
    """Apply ``arch.size_defaults`` for the chosen image size to what nothing above the architecture's
    own defaults set (a loss's or penalty's suggestions, a variant, --config, the user's options), and
    record what they changed in ``cfg["decisions"]["size_defaults"]`` ("dcgan's defaults at 28x28:
    steps=12000") for the run's first line and config.toml. Every entry is validated, so a plugin's
    mistake shows at whatever size it trains at."""
    run, hps = size_settings(arch).get(int(cfg.get("image_size") or 0), ({}, {}))
    applied = {k: v for k, v in run.items() if k not in run_above}
    applied_hps = {k: v for k, v in hps.items() if k not in hps_above}
    cfg.update(applied)
    cfg["hparams"].update(applied_hps)
    if applied or applied_hps:
        size = cfg["image_size"]
        cfg.setdefault("decisions", {})["size_defaults"] = f"{arch.name}'s defaults at {size}x{size}: " + ", ".join(
            f"{k}={v}" for k, v in {**applied, **applied_hps}.items())


def _decide_image_size(registry: Registry, arch: ArchitectureSpec, cfg: dict[str, Any], sources) -> None:
    """``cfg["image_size"]`` from the first source that sets it, else from the data (see
    :mod:`ganzoo.engine.image_size`); the reason goes to ``cfg["decisions"]["image_size_why"]``."""
    from . import image_size

    asked, by = next(((d["image_size"], by) for d, by in sources if d.get("image_size")), (None, ""))
    cfg["image_size"], why = image_size.choose(registry, arch, cfg["data"], asked, by, cfg["hparams"])
    if why:
        cfg.setdefault("decisions", {})["image_size_why"] = why


def _check(cfg: Mapping[str, Any]) -> None:
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise GanzooError(msg)

    need(cfg["steps"] >= 1, f"--steps must be a positive number of steps, got {cfg['steps']}")
    need(cfg["batch_size"] >= 1, f"--batch-size must be at least 1, got {cfg['batch_size']}")
    need(cfg["n_critic"] >= 1, f"n_critic must be at least 1, got {cfg['n_critic']}")
    need(cfg["lr_g"] > 0 and cfg["lr_d"] > 0, "learning rates must be positive")
    need(cfg["optimizer"] in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got '{cfg['optimizer']}'")
    need(0.0 <= cfg["ema"] < 1.0, f"ema must be in [0, 1), got {cfg['ema']}")
    need(0.0 <= cfg["lr_decay"] <= 1.0, f"lr_decay must be in [0, 1] (a fraction of the run), got {cfg['lr_decay']}")
    need(cfg["image_size"] >= 0, f"--image-size must be positive, got {cfg['image_size']}")
    need(cfg["threads"] >= 0, f"--threads must be a positive number of threads (0: auto), got {cfg['threads']}")
    need(cfg["eval_samples"] >= 1, "eval_samples must be positive")
    need(cfg["image_channels"] in (0, 1, 3),
         f"--channels (image_channels) must be 1 (grey) or 3 (RGB), got {cfg['image_channels']}")
    need(cfg["augment"] in ("none", "flip"), f"--set augment must be none or flip, got '{cfg['augment']}'")
    need(cfg["load_size"] >= 0, f"--set load_size must be a positive size in pixels or 0 (off), got {cfg['load_size']}")
    need(cfg["load_scale"] >= 1.0, f"--set load_scale must be at least 1 (1: off), got {cfg['load_scale']}")
    need(cfg["augment_min_size"] >= 0, f"--set augment_min_size must be 0 or more pixels, got {cfg['augment_min_size']}")
    need(cfg["data_workers"] >= 0, f"--set data_workers must be 0 (every core) or more, got {cfg['data_workers']}")
    need(cfg["keep_checkpoints"] >= 0, f"keep_checkpoints must be 0 (keep all) or more, got {cfg['keep_checkpoints']}")
    dev = cfg["device"]
    need(dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:"), f"--device must be auto, cpu, cuda or cuda:N, got '{dev}'")
