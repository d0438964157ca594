"""TUE: transferable unlearnable examples (Ren et al., ICLR 2023).

Sample-wise noise that lowers a SimCLR surrogate's contrastive loss on
``x + delta`` (``ssl_weight``) plus the class-separability term CSD of the noise
itself (``csd_weight``), alternating with SimCLR training of the surrogate.
Defaults follow the official code (renjie3/TUE) and its SimCLR demo command
(demo.sh): eps 8/255, step 0.8/255, 20 steps per noise update, 20 surrogate
steps per round, batch 512, Adam 1e-3 (weight decay 1e-6), temperature 0.5,
random start, 40 epochs, ``ssl_weight`` 0 and CSD weight 0.1. The CSD term treats
each class's spread as a constant, as the official code does
(``csd_spread_gradient`` lets the gradient flow through it too).

Weight settings (see ``dememo.protect.presets.TUE_SETTINGS``): ``simclr-demo``
(ssl 0, CSD 0.1; the default and the ``paper`` preset: it is the command the
authors published for their SimCLR results) and ``combined`` (ssl 1, CSD 0.1:
both terms of the paper's objective). The official script's own argument
defaults are ssl 1 and CSD 0. With ``ssl_weight`` 0 the noise does not depend
on the encoder, so the encoder is not trained (the reference trains it anyway,
for monitoring). A round is ``train_steps`` surrogate steps and one noise pass
over all covered samples; ``rounds`` defaults to what 40 epochs of the
reference loop amount to.
"""

from __future__ import annotations

import math

import torch

from dememo.data.imageset import ImageSet
from dememo.progress import make_progress
from dememo.protect.base import ProtectConfig, Protector, register_protector
from dememo.protect.perturbation import Perturbation
from dememo.protect.pixel_pgd import frozen, pgd
from dememo.protect.simclr import ContrastiveEncoder, class_separability, nt_xent, simclr_augment
from dememo.runtime import MEMORY_FORMAT, autocast, channels_last, seed_everything


class TUEConfig(ProtectConfig):
    surrogate: str = "resnet18"
    lr: float = 1e-3
    weight_decay: float = 1e-6
    temperature: float = 0.5
    batch_size: int = 512
    train_steps: int = 20
    pgd_steps: int = 20
    step_size: float = 0.8 / 255
    ssl_weight: float = 0.0
    csd_weight: float = 0.1
    csd_spread_gradient: bool = False  # official: the within-class spread is detached
    random_start: bool = True
    epochs: int = 40
    rounds: int | None = None  # default: epochs * ceil(batches per epoch / train_steps)


@register_protector
class TransferableUE(Protector):
    name = "tue"
    description = "noise against a SimCLR surrogate plus class separability (Ren et al. 2023)"
    Config = TUEConfig

    def generate(self, data: ImageSet, indices: torch.Tensor) -> Perturbation:
        cfg: TUEConfig = self.config
        seed_everything(cfg.seed)
        dev = self.device
        gen = torch.Generator(device=dev).manual_seed(cfg.seed)
        images, labels = channels_last(data.images[indices].to(dev)), data.labels[indices].to(dev)
        n = len(indices)
        delta = channels_last(torch.zeros(n, *data.images.shape[1:], device=dev))
        if cfg.random_start:
            delta.uniform_(-cfg.budget, cfg.budget, generator=gen)
        mean, std = data.channel_stats()
        encoder = ContrastiveEncoder(cfg.surrogate, data.channels, data.image_size, mean, std)
        encoder.to(dev, memory_format=MEMORY_FORMAT)
        optimizer = torch.optim.Adam(encoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        batch = min(cfg.batch_size, n)
        rounds = cfg.rounds or cfg.epochs * math.ceil(math.ceil(n / batch) / cfg.train_steps)

        clean = images[:0].float()  # the batch's clean images, read by the objective

        def objective(model, inputs, targets):
            csd = class_separability(inputs - clean, targets, cfg.csd_spread_gradient)
            if cfg.ssl_weight == 0:
                return cfg.csd_weight * csd
            views = simclr_augment(inputs, gen), simclr_augment(inputs, gen)
            return cfg.ssl_weight * nt_xent(model(views[0]), model(views[1]), cfg.temperature) + (
                cfg.csd_weight * csd
            )

        with make_progress() as bar:
            task = bar.add_task("tue rounds", total=rounds, status="")
            for round_ in range(rounds):
                encoder.train()
                for _ in range(cfg.train_steps if cfg.ssl_weight else 0):
                    pick = torch.randperm(n, generator=gen, device=dev)[:batch]
                    inputs = (images[pick].float() / 255 + delta[pick]).clamp(0, 1)
                    with autocast(dev, self.precision):
                        a, b = encoder(simclr_augment(inputs, gen)), encoder(simclr_augment(inputs, gen))
                        loss = nt_xent(a, b, cfg.temperature)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                order = torch.randperm(n, generator=gen, device=dev)
                with frozen(encoder), autocast(dev, self.precision):
                    for start in range(0, n, batch):
                        part = order[start : start + batch]
                        clean = images[part].float() / 255
                        delta[part] = pgd(encoder, clean, labels[part], delta[part],
                                          budget=cfg.budget, step_size=cfg.step_size, steps=cfg.pgd_steps,
                                          minimize=True, loss_fn=objective)  # fmt: skip
                status = f"contrastive loss {float(loss.detach()):.3f}" if cfg.ssl_weight else "CSD only"
                bar.update(task, advance=1, status=f"round {round_ + 1}: {status}")
        return Perturbation(self.name, "additive", indices.cpu(), torch.arange(n), delta.cpu(), len(data),
                            cfg.budget, config={**cfg.model_dump(), "rounds": rounds})  # fmt: skip
