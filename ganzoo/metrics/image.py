"""Offline image metrics for ``ganzoo eval`` (no download, ever). Definitions: docs/metrics.md.

Every figure comes with its real-data floor, measured the same way on real images:

* noise-to-image runs: ``n`` generated images are scored against one half of a fixed shuffle of the
  real data; the floor scores the other half against it (same ``n``). ``n`` is half the data set,
  at most ``samples`` (default 5,000).
* image-to-image runs (``step.image_to_image``): ``n`` images of each domain are translated
  (A->B, B->A) and scored against half of the target domain; the floor scores the target domain's
  other half.

Features and class probabilities come from a small CNN trained on the run's own labelled data
(:mod:`ganzoo.metrics.classifier`, cached); with ``inception_weights`` real FID/KID are added
(:mod:`ganzoo.metrics.inception`). Fixed seeds and eval-mode networks: a run always gets the same
numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from ..errors import GanzooError
from . import stats
from .classifier import Classifier, get_classifier

from .evaluate import EVAL_SEED  # one seed for every eval metric
MAX_SAMPLES = 5000
BATCH = 500
NO_FID = ("FID/KID unavailable: pass --inception-weights PATH (a TorchScript inception-2015-12-05.pt "
          "you already have; ganzoo never downloads weights)")


@contextlib.contextmanager
def _eval_mode(nets):
    modes = {k: m.training for k, m in nets.items()}
    for m in nets.values():
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for k, m in nets.items():
            m.train(modes[k])


def _check_shape(out: torch.Tensor, info, what: str) -> torch.Tensor:
    want = (info.channels, info.height, info.width)
    if out.ndim != 4 or tuple(out.shape[1:]) != want:
        raise GanzooError(f"{what} produced images of shape {list(out.shape[1:])}, but the data is {list(want)}; "
                          "report this to the architecture's plugin")
    return out.float().cpu().clamp(-1, 1)


def generate_images(parts, n: int, seed: int = EVAL_SEED) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples from fixed noise (and balanced labels 0,1,..,K-1,0,.. for conditional models)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, parts.ctx.latent_dim, generator=gen)
    labels = None
    if parts.step.uses_labels:
        labels = torch.arange(n) % max(1, parts.dataset.info.num_classes)
    nets = parts.sample_nets()
    out = []
    with _eval_mode(nets):
        for i in range(0, n, BATCH):
            lab = None if labels is None else labels[i : i + BATCH].to(parts.device)
            img = parts.step.generate(parts.ctx, z[i : i + BATCH].to(parts.device), lab, nets=nets)
            out.append(_check_shape(img, parts.dataset.info, f"'{parts.spec.name}' generator"))
    return torch.cat(out), labels


def _translate(parts, images: torch.Tensor, direction: str) -> torch.Tensor:
    nets = parts.sample_nets()
    out = []
    with _eval_mode(nets):
        for i in range(0, len(images), BATCH):
            img = parts.step.translate(parts.ctx, images[i : i + BATCH].to(parts.device), direction, nets=nets)
            out.append(_check_shape(img, parts.dataset.info, f"'{parts.spec.name}' {direction} translation"))
    return torch.cat(out)


def _sizes(n_total: int, samples: int | None, what: str) -> int:
    cap = MAX_SAMPLES if samples is None else int(samples)
    if cap < 2:
        raise GanzooError(f"--samples must be at least 2, got {cap}")
    n = min(n_total // 2, cap)
    if n < 2:
        raise GanzooError(f"{what} holds {n_total} images; image metrics need at least 4 (two halves of 2)")
    return n


def _num_classes(ds, y: torch.Tensor) -> int:
    return int(ds.info.num_classes or (int(y.max()) + 1 if len(y) else 0))


def _distribution(clf: Classifier, fake: torch.Tensor, ref: torch.Tensor, other: torch.Tensor) -> dict[str, Any]:
    """Classifier FD / IS / classes of ``fake`` against ``ref``, and the floor ``other`` vs ``ref``."""
    f_fake, p_fake = clf.run(fake)
    f_ref, _ = clf.run(ref)
    f_oth, p_oth = clf.run(other)
    k = clf.num_classes
    cs_fake = stats.class_stats(p_fake.argmax(1).numpy(), k)
    cs_real = stats.class_stats(p_oth.argmax(1).numpy(), k)
    return {
        "classifier_fd": stats.frechet_distance(f_fake.numpy(), f_ref.numpy()),
        "classifier_fd_floor": stats.frechet_distance(f_oth.numpy(), f_ref.numpy()),
        "classifier_is": stats.inception_score(p_fake.numpy()),
        "classifier_is_real": stats.inception_score(p_oth.numpy()),
        "classes_covered": cs_fake["covered"],
        "classes_covered_real": cs_real["covered"],
        "class_kl": cs_fake["kl"],
        "class_kl_real": cs_real["kl"],
        "class_counts": cs_fake["counts"],
        "_probs": p_fake,
    }


def _fid(inc, fake: torch.Tensor, ref: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    f_fake, f_ref, f_oth = inc(fake).numpy(), inc(ref).numpy(), inc(other).numpy()
    return {
        "fid": stats.frechet_distance(f_fake, f_ref),
        "fid_floor": stats.frechet_distance(f_oth, f_ref),
        "kid": stats.kernel_distance(f_fake, f_ref),
        "kid_floor": stats.kernel_distance(f_oth, f_ref),
    }


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def image_metrics(parts, inception_weights: str | None = None, samples: int | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """All image metrics that apply to ``parts`` (a :class:`ganzoo.engine.build.RunParts`)."""
    inc = None
    if inception_weights:
        from .inception import InceptionFeatures

        inc = InceptionFeatures(inception_weights, parts.device)  # fail fast, before any generation
    spec = str(parts.cfg.get("data") or parts.dataset.info.name)
    if getattr(parts.step, "image_to_image", False):
        out = _translation_metrics(parts, spec, inc, samples, log)
    else:
        out = _sample_metrics(parts, spec, inc, samples, log)
    if inc is None:
        out.update(fid=None, kid=None)
        out["notes"].append(NO_FID)
    return _round(out)


# -- noise -> image ---------------------------------------------------------------------------------
def _sample_metrics(parts, spec: str, inc, samples: int | None, log) -> dict[str, Any]:
    ds = parts.dataset
    n = _sizes(len(ds), samples, f"data set '{ds.info.name}'")
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(EVAL_SEED))
    ref, other = ds.get(perm[n : 2 * n]).real, ds.get(perm[:n]).real
    fake, labels = generate_images(parts, n)
    out: dict[str, Any] = {"samples": n, "notes": []}
    k = _num_classes(ds, ds.y) if ds.y is not None else 0
    if ds.y is None or k < 2:
        why = "has no labels" if ds.y is None else "has a single class"
        out["notes"].append(f"data set '{ds.info.name}' {why}: classifier metrics (FD, IS, classes) are skipped")
        out.update(classifier_fd=None, classifier_fd_floor=None, classifier_is=None, classes_covered=None)
    else:
        clf = get_classifier("classes", spec, ds.x, ds.y, k, log)
        d = _distribution(clf, fake, ref, other)
        probs = d.pop("_probs")
        out.update(d, num_classes=k, classifier_accuracy=clf.accuracy)
        if labels is not None:
            out["conditional_accuracy"] = float((probs.argmax(1) == labels).double().mean())
            out["conditional_accuracy_real"] = clf.accuracy
    if inc is not None:
        out.update(_fid(inc, fake, ref, other))
    return out


# -- image -> image (CycleGAN) ----------------------------------------------------------------------
def _translation_metrics(parts, spec: str, inc, samples: int | None, log) -> dict[str, Any]:
    ds = parts.dataset
    if ds.x_b is None:
        raise GanzooError(f"'{parts.spec.name}' translates images but data set '{ds.info.name}' has no domain B")
    n = _sizes(min(len(ds), ds.len_b), samples, f"the smaller domain of '{ds.info.name}'")
    g = torch.Generator().manual_seed(EVAL_SEED)
    pa, pb = torch.randperm(len(ds), generator=g), torch.randperm(ds.len_b, generator=g)
    a = ds.get(pa[:n], pb[:n])
    a_ref = ds.get(pa[n : 2 * n], pb[n : 2 * n])
    real = {"A": (a.real, a.labels, a_ref.real), "B": (a.real_b, a.labels_b, a_ref.real_b)}
    fake = {"AB": _translate(parts, real["A"][0], "AB"), "BA": _translate(parts, real["B"][0], "BA")}
    rec = {"AB": _translate(parts, fake["AB"], "BA"), "BA": _translate(parts, fake["BA"], "AB")}
    out: dict[str, Any] = {"samples": n, "notes": []}
    cyc = {d: float((rec[d] - real[d[0]][0]).abs().mean()) for d in ("AB", "BA")}
    out.update(cycle_l1=(cyc["AB"] + cyc["BA"]) / 2, cycle_l1_ab=cyc["AB"], cycle_l1_ba=cyc["BA"])
    if ds.extra.get("mapping") == "invert":  # 255 - x in uint8 is exactly -x in [-1, 1]
        m = {d: float((fake[d] + real[d[0]][0]).abs().mean()) for d in ("AB", "BA")}
        out.update(mapping_l1=(m["AB"] + m["BA"]) / 2, mapping_l1_ab=m["AB"], mapping_l1_ba=m["BA"])

    same = ds.x.dtype == ds.x_b.dtype  # both uint8 (or both float): train on the stored tensors
    x_all = torch.cat([ds.x, ds.x_b]) if same else torch.cat([ds.all_real(), ds.all_real(domain="b")])
    dom = get_classifier("domain", spec, x_all,
                         torch.cat([torch.zeros(len(ds), dtype=torch.long), torch.ones(ds.len_b, dtype=torch.long)]), 2, log)
    da = {"AB": float((dom.run(fake["AB"])[1].argmax(1) == 1).double().mean()),
          "BA": float((dom.run(fake["BA"])[1].argmax(1) == 0).double().mean())}
    out.update(domain_accuracy=(da["AB"] + da["BA"]) / 2, domain_accuracy_ab=da["AB"], domain_accuracy_ba=da["BA"],
               domain_accuracy_real=dom.accuracy)

    k = _num_classes(ds, ds.y) if ds.y is not None and ds.y_b is not None else 0
    if k < 2:
        out["notes"].append(f"data set '{ds.info.name}' has no labels for both domains: label preservation and "
                            "classifier metrics (FD, IS, classes) are skipped")
        out.update(classifier_fd=None, classifier_fd_floor=None, classifier_is=None, classes_covered=None,
                   label_preservation=None)
    else:
        clf = get_classifier("classes", spec, x_all, torch.cat([ds.y, ds.y_b]), k, log)
        per = {}
        for d, tgt in (("AB", "B"), ("BA", "A")):
            per[d] = _distribution(clf, fake[d], real[tgt][2], real[tgt][0])
            per[d]["label_preservation"] = float((per[d].pop("_probs").argmax(1) == real[d[0]][1]).double().mean())
        for key in ("classifier_fd", "classifier_fd_floor", "classifier_is", "classifier_is_real", "class_kl",
                    "class_kl_real", "label_preservation"):
            out[key] = (per["AB"][key] + per["BA"][key]) / 2
        for key in ("classes_covered", "classes_covered_real"):
            out[key] = min(per["AB"][key], per["BA"][key])
        for d in ("AB", "BA"):
            for key in ("label_preservation", "classifier_fd", "classifier_fd_floor", "classes_covered"):
                out[f"{key}_{d.lower()}"] = per[d][key]
        out.update(num_classes=k, classifier_accuracy=clf.accuracy, label_preservation_real=clf.accuracy)
    if inc is not None:
        f = {d: _fid(inc, fake[d], real[tgt][2], real[tgt][0]) for d, tgt in (("AB", "B"), ("BA", "A"))}
        out.update({key: (f["AB"][key] + f["BA"][key]) / 2 for key in f["AB"]})
        out.update({f"fid_{d.lower()}": f[d]["fid"] for d in f})
    return out


from .table import ROWS, format_table  # noqa: E402,F401  (moved; imported from here before)
