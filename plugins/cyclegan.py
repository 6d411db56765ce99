"""CycleGAN: unpaired image-to-image translation with cycle consistency (Zhu et al. 2017).

Two ResNet generators G_AB: A -> B and G_BA: B -> A, two PatchGAN discriminators D_A (real A vs
G_BA(b)) and D_B (real B vs G_AB(a)). On the shared engine: one D update (both discriminators, on
images drawn from a history pool of 50 generated images each), then one G update (both
generators: adversarial + lambda_cycle * cycle L1 + lambda_cycle * lambda_identity * identity L1).
Adversarial terms go through the run's loss (``--loss``, LSGAN by default, relativistic ones
included); cycle and identity terms stay here. The learning rate is constant for the first half of
the run and decays linearly to zero over the second (the reference's schedule, by step).

Defaults are tuned for small images such as the embedded ``digits-unpaired`` (8 px): a
full-resolution generator, lambda_cycle 2 and no identity loss (see docs/architectures/cyclegan.md
for why the paper's 10 / 0.5 lock it into the identity map there); ``--set variant=paper`` gives
the paper's settings for 128-256 px photos.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo import ArchitectureSpec, ExportSpec, GanzooError, HParam, OptimizerSpec, hookimpl
from ganzoo.api import Preview, Step, init_weights

from .cyclegan_nets import ImagePool, PatchDiscriminator, ResnetGenerator, plan, pool_state

PREVIEW_N = 8  # images per domain in the sample grid


def build(info, hp):
    blocks, layers, down = plan(info.height, info.width, hp["n_blocks"], hp["n_layers_d"], hp["n_down"])
    c = info.channels
    nets = {
        "G_AB": ResnetGenerator(c, c, hp["ngf"], blocks, down),
        "G_BA": ResnetGenerator(c, c, hp["ngf"], blocks, down),
        "D_A": PatchDiscriminator(c, hp["ndf"], layers),
        "D_B": PatchDiscriminator(c, hp["ndf"], layers),
    }
    if hp["init"] == "normal":
        for net in nets.values():
            init_weights(net)
    return nets


def _size_multiple(net) -> int:
    return net.size_multiple


def _min_size(net) -> int:
    return net.min_size


def linear_decay(step: int, total: int) -> float:
    """1 for the first half of the run, then linear towards 0 (the reference's schedule, by step)."""
    keep = total // 2
    return 1.0 - max(0, step - keep) / float(total - keep + 1)


class CycleGANStep(Step):
    image_to_image = True
    directions = {"AB": "G_AB", "BA": "G_BA"}
    generator_net = "G_AB"

    def __init__(self, hp):
        super().__init__(hp)
        if self.hp["lambda_cycle"] < 0 or self.hp["lambda_identity"] < 0:
            raise GanzooError("lambda_cycle and lambda_identity must be >= 0 (e.g. --set lambda_identity=0 turns identity off)")
        if self.hp["pool_size"] < 0:
            raise GanzooError("pool_size must be >= 0 (0 turns the image pool off)")
        self.pools = {"A": ImagePool(self.hp["pool_size"]), "B": ImagePool(self.hp["pool_size"])}

    def d_step(self, ctx, batch):
        n = ctx.nets
        a, b = batch.real, batch.real_b
        with torch.no_grad():
            fake_b, fake_a = n["G_AB"](a), n["G_BA"](b)
        # One pool for the global batch: with several processes every process keeps the same pool
        # of everyone's fakes and takes its own rows back, as the 1-process run would.
        fake_a = ctx.local_batch(self.pools["A"].query(ctx.gather_batch(fake_a), ctx.generator, ctx.device))
        fake_b = ctx.local_batch(self.pools["B"].query(ctx.gather_batch(fake_b), ctx.generator, ctx.device))
        la = ctx.discriminator_loss(n["D_A"], a, fake_a)
        lb = ctx.discriminator_loss(n["D_B"], b, fake_b)
        out = {"loss": la["loss"] + lb["loss"], "D_A": la["adv"], "D_B": lb["adv"]}
        if "penalty" in la:
            out["penalty"] = la["penalty"] + lb["penalty"]
        return out

    def g_step(self, ctx, batch):
        n = ctx.nets
        a, b = batch.real, batch.real_b
        lam, lam_idt = float(self.hp["lambda_cycle"]), float(self.hp["lambda_identity"])
        fake_b = n["G_AB"](a)
        fake_a = n["G_BA"](b)
        adv_ab = ctx.generator_loss(n["D_B"], b, fake_b)["loss"]
        adv_ba = ctx.generator_loss(n["D_A"], a, fake_a)["loss"]
        cycle = lam * (F.l1_loss(n["G_BA"](fake_b), a) + F.l1_loss(n["G_AB"](fake_a), b))
        loss = adv_ab + adv_ba + cycle
        out = {"adv_AB": adv_ab, "adv_BA": adv_ba, "cycle": cycle}
        if lam_idt > 0:
            ident = lam * lam_idt * (F.l1_loss(n["G_AB"](b), b) + F.l1_loss(n["G_BA"](a), a))
            loss = loss + ident
            out["identity"] = ident
        out["loss"] = loss
        return out

    def generate(self, ctx, z, labels=None, nets=None):
        raise GanzooError("cyclegan translates images and has no latent code; translate images A -> B or B -> A instead")

    def fixed_inputs(self, ctx, dataset, n, seed):
        k = min(PREVIEW_N, len(dataset), dataset.len_b)  # the same count per domain keeps the rows aligned
        return {"a": dataset.all_real(k, "a"), "b": dataset.all_real(k, "b")}

    def preview(self, ctx, fixed, nets=None):
        a, b = fixed["a"].to(ctx.device), fixed["b"].to(ctx.device)
        ab = self.translate(ctx, a, "AB", nets)
        ba = self.translate(ctx, b, "BA", nets)
        rows = [a, ab, self.translate(ctx, ab, "BA", nets), b, ba, self.translate(ctx, ba, "AB", nets)]
        return Preview(images=torch.cat(rows).detach().float().cpu(), nrow=len(a),
                       caption="rows: A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B))")

    def state_dict(self):
        return pool_state(self.pools)

    def load_state_dict(self, state):
        for k, pool in self.pools.items():
            pool.load_state_dict(state.get(f"pool_{k}"))


@hookimpl
def ganzoo_architectures():
    return [
        ArchitectureSpec(
            name="cyclegan",
            summary="CycleGAN (Zhu et al. 2017): unpaired A <-> B translation, ResNet generators, PatchGAN critics",
            build=build,
            make_step=CycleGANStep,
            groups={"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")},
            data_kinds=("unpaired",),
            default_data="digits-unpaired",
            default_loss="lsgan",
            optimizers={"G": OptimizerSpec("adam", 2e-4, (0.5, 0.999)), "D": OptimizerSpec("adam", 2e-4, (0.5, 0.999))},
            hparams=(
                HParam("ngf", int, 32, "generator width (channels of its first layer; paper: 64)"),
                HParam("ndf", int, 32, "discriminator width (channels of its first layer; paper: 64)"),
                HParam("n_blocks", int, 0, "residual blocks in each generator; 0: by image size (9 at 256 px, 6 at 128, 2 below 32)"),
                HParam("n_down", int, -1, "stride-2 downsamplings in each generator, 0-2; -1: by image size "
                       "(2 as the paper from 64 px, 1 at 32-63 px, 0 below)"),
                HParam("n_layers_d", int, 0, "stride-2 layers of the PatchGAN; 0: deepest that fits, at most 3 (70x70 patches)"),
                HParam("lambda_cycle", float, 2.0, "weight of the cycle-consistency L1 loss (paper: 10)"),
                HParam("lambda_identity", float, 0.0, "identity L1 weight, relative to lambda_cycle (reference code: 0.5; 0: off)"),
                HParam("pool_size", int, 50, "generated images kept per domain to train the discriminators (0: off)"),
                HParam("init", str, "normal", "weight init: 'normal' (N(0, 0.02), as the paper) or 'default' (PyTorch)",
                       choices=("normal", "default")),
            ),
            variants={
                "paper": {"lambda_cycle": 10.0, "lambda_identity": 0.5},  # + --set ngf=64 --set ndf=64 --batch-size 1
            },
            # The reference code's --preprocess resize_and_crop (load 286, random 256 crop) and random
            # flips: load_size = round(image_size * 286 / 256) (143 for 128, 286 for 256), from 64 px up.
            # Below (the embedded 8 px digits) a random 1-pixel shift broke label preservation (seed 0:
            # 0.21 with flip + crop, 0.09 with the crop alone, against 0.99 without; see docs).
            defaults={"steps": 600, "batch_size": 16, "augment": "flip", "load_scale": 286 / 256,
                      "augment_min_size": 64},
            exports=(
                # fully convolutional: exported for any size (a photo translates at its own size)
                ExportSpec("G_AB", ("image",), "image", "ResNet generator: domain A image -> domain B image",
                           dynamic_size=True, size_multiple=_size_multiple, min_size=_min_size),
                ExportSpec("G_BA", ("image",), "image", "ResNet generator: domain B image -> domain A image",
                           dynamic_size=True, size_multiple=_size_multiple, min_size=_min_size),
            ),
            lr_factor=linear_decay,
            tiny={"image_size": 8, "ngf": 4, "ndf": 4},
            min_image_size=8,
            paper="Zhu, Park, Isola, Efros, Unpaired Image-to-Image Translation using Cycle-Consistent "
                  "Adversarial Networks, ICCV 2017, arXiv:1703.10593",
        )
    ]
