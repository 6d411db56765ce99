"""A small CNN classifier trained once per data set on its real images, and cached.

It stands in for Inception where no pretrained weights may be downloaded: its penultimate features
give a Fréchet distance, its class probabilities an Inception-Score-like figure and the classes a
generator covers. It is trained on the run's own data at the run's image size and channel count,
so it fits whatever images the run produces.

Cache: ``$GANZOO_CACHE/classifiers/`` (default ``~/.cache/ganzoo/classifiers/``), one safetensors
file per (purpose, data spec, image size, channels, content hash of the images and labels, version),
written atomically. Delete the folder to retrain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..engine.checkpoint import atomic_write_bytes

VERSION = 1  # bump when the network or its training changes: old cache entries are then ignored
FEATURES = 64  # penultimate width: the space the Fréchet distance is computed in
MAX_WORK_SIZE = 16  # larger images are area-downsampled to this inside the network
TRAIN_STEPS = 300
BATCH = 64
MAX_TRAIN = 20_000  # samples used for training at most (MNIST / CIFAR-sized sets)
HOLDOUT = 0.1  # held out to report the classifier's own accuracy
SEED = 1234

# How many classifiers this process trained / loaded from the cache (tests, diagnostics).
counters = {"trained": 0, "loaded": 0}


def cache_dir() -> Path:
    root = os.environ.get("GANZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ganzoo")
    return Path(root).expanduser() / "classifiers"


class TinyCNN(nn.Module):
    """conv 3x3 stack, stride-2 stages down to 4x4, then FEATURES-wide penultimate layer."""

    def __init__(self, channels: int, num_classes: int, size: int):
        super().__init__()
        self.work = max(1, min(int(size), MAX_WORK_SIZE))
        layers: list[nn.Module] = [nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU()]
        c, s = 16, self.work
        while s > 4:
            out = min(2 * c, 64)
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.ReLU()]
            c, s = out, (s + 1) // 2
        self.convs = nn.Sequential(*layers)
        self.grid = s  # spatial size after the stride-2 stages (4 for images of 4px or more)
        self.fc = nn.Linear(c * s * s, FEATURES)
        self.head = nn.Linear(FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [N, C, H, W] in [-1, 1] -> (penultimate features [N, FEATURES], logits [N, K])."""
        if max(x.shape[-2:]) > self.work:
            x = F.adaptive_avg_pool2d(x, self.work)
        h = self.convs(x)
        if tuple(h.shape[-2:]) != (self.grid, self.grid):  # odd shapes: pool to the trained grid
            h = F.adaptive_avg_pool2d(h, self.grid)
        f = F.relu(self.fc(h.flatten(1)))
        return f, self.head(f)


@dataclass
class Classifier:
    net: TinyCNN
    num_classes: int
    accuracy: float | None  # on held-out real images (None: too few images to hold any out)
    path: Path
    cached: bool

    @torch.no_grad()
    def run(self, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """Features [N, FEATURES] and class probabilities [N, K] (float64, CPU)."""
        self.net.eval()
        feats, probs = [], []
        for i in range(0, len(images), batch):
            f, logits = self.net(images[i : i + batch].float().cpu())
            feats.append(f.double())
            probs.append(torch.softmax(logits.double(), 1))
        return torch.cat(feats), torch.cat(probs)


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in (x, y):
        t = t.contiguous().cpu()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def cache_path(purpose: str, data_spec: str, x: torch.Tensor, y: torch.Tensor) -> Path:
    c, h, w = (int(s) for s in x.shape[1:])
    key = json.dumps({"v": VERSION, "purpose": purpose, "data": data_spec, "size": [h, w], "channels": c,
                      "content": _fingerprint(x, y)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", data_spec).strip("-")[-40:] or "data"
    return cache_dir() / f"{slug}-{purpose}-{h}x{w}c{c}-v{VERSION}-{digest}.safetensors"


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(127.5).sub(1.0) if x.dtype == torch.uint8 else x.float()


def _new_net(channels: int, num_classes: int, size: int) -> TinyCNN:
    """A fresh network, initialised from a fixed seed without touching the global RNG (evaluating
    mid-training must not change the training run)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        return TinyCNN(channels, num_classes, size)


def _train(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[TinyCNN, float | None]:
    """Deterministic training: own RNG (the global one is untouched) and one thread (a net this small
    gains nothing from more, and the weights then do not depend on the machine's core count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_1(x, y, num_classes)
    finally:
        torch.set_num_threads(threads)


def _train_1(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[TinyCNN, float | None]:
    gen = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(len(x), generator=gen)
    n_hold = max(1, int(len(x) * HOLDOUT)) if len(x) >= 20 else 0
    hold, train = perm[:n_hold], perm[n_hold:][:MAX_TRAIN]
    net = _new_net(int(x.shape[1]), num_classes, max(int(x.shape[2]), int(x.shape[3])))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=TRAIN_STEPS, pct_start=0.15)
    net.train()
    order = train[torch.randperm(len(train), generator=gen)]
    pos = 0
    for _ in range(TRAIN_STEPS):
        if pos + BATCH > len(order):
            order, pos = train[torch.randperm(len(train), generator=gen)], 0
        idx = order[pos : pos + BATCH]
        pos += BATCH
        _, logits = net(_as_float(x[idx]))
        loss = F.cross_entropy(logits, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    acc = None
    if n_hold:
        with torch.no_grad():
            correct = sum(int((net(_as_float(x[hold[i : i + 500]]))[1].argmax(1) == y[hold[i : i + 500]]).sum())
                          for i in range(0, n_hold, 500))
        acc = correct / n_hold
    return net, acc


def _load(path: Path, channels: int, num_classes: int, size: int) -> tuple[TinyCNN, float | None] | None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(path))
        net = _new_net(channels, num_classes, size)
        net.load_state_dict(state)
        acc = meta.get("accuracy", "")
        return net.eval(), float(acc) if acc else None
    except Exception:  # a corrupt or stale cache entry: retrain and overwrite it
        return None


def get_classifier(purpose: str, data_spec: str, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                   log: Callable[[str], None] | None = None) -> Classifier:
    """The cached classifier for these images/labels, training (and caching) it on first use."""
    from safetensors.torch import save

    y = y.long()
    size = max(int(x.shape[2]), int(x.shape[3]))
    path = cache_path(purpose, data_spec, x, y)
    if path.is_file():
        got = _load(path, int(x.shape[1]), num_classes, size)
        if got is not None:
            counters["loaded"] += 1
            return Classifier(got[0], num_classes, got[1], path, True)
    if log:
        log(f"training the {purpose} classifier for {data_spec} (once; cached in {path.parent})")
    net, acc = _train(x, y, num_classes)
    counters["trained"] += 1
    meta = {"version": str(VERSION), "purpose": purpose, "data": data_spec, "accuracy": "" if acc is None else repr(acc),
            "num_classes": str(num_classes)}
    try:
        atomic_write_bytes(path, save({k: v.contiguous() for k, v in net.state_dict().items()}, metadata=meta))
    except OSError as exc:  # a read-only home: still usable, just not cached
        if log:
            log(f"could not cache the classifier in {path.parent} ({exc.strerror}); set GANZOO_CACHE to a writable folder")
    return Classifier(net, num_classes, acc, path, False)
