"""The discretized network a genotype builds (DARTS ``NetworkCIFAR``), with auxiliary head and drop-path."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sddarts.search_spaces.genotypes import Genotype
from sddarts.search_spaces.operations import FactorizedReduce, ReLUConvBN, make_op
from sddarts.search_spaces.supernet import reduction_layers


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zeroes whole samples of a path with probability ``drop_prob`` and rescales the rest."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    """A discrete cell: each node sums two ops on two earlier states."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.inputs = [src for _, src in edges]
        self.ops = nn.ModuleList(make_op(op, c, 2 if reduction and src < 2 else 1) for op, src in edges)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(0, len(self.ops), 2):
            hs = []
            for op, src in zip(self.ops[i : i + 2], self.inputs[i : i + 2]):
                h = op(states[src])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier on the 2/3-depth features (8x8 at 32x32 input)."""

    def __init__(self, c: int, num_classes: int, feature_size: int):
        super().__init__()
        pool = (nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False) if 8 <= feature_size <= 10
                else nn.AdaptiveAvgPool2d(2))  # DARTS' pool gives the 2x2 the next conv needs only at 8-10
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), pool,
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


IMAGENET_STEM_AT = 64  # inputs of this side and more enter through DARTS' ImageNet stem


def imagenet_stem(in_channels: int, C: int) -> tuple[nn.Module, nn.Module]:
    """DARTS' ``NetworkImageNet`` stem: three stride-2 3x3 convolutions (1/8 of the side), as two
    modules whose outputs are the first two cell inputs."""
    stem0 = nn.Sequential(nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                          nn.ReLU(inplace=True), nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(C))
    stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
    return stem0, stem1


class DiscreteNetwork(nn.Module):
    """The network a genotype builds (DARTS' ``NetworkCIFAR``; from ``IMAGENET_STEM_AT`` px its
    ``NetworkImageNet`` stem). ``forward`` returns ``(logits, aux_logits or None)``."""

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 in_channels: int = 3, auxiliary: bool = False, image_size: int = 32, stem_multiplier: int = 3):
        super().__init__()
        self.genotype, self.layers, self.auxiliary = genotype, layers, auxiliary
        self.drop_path_prob = 0.0
        self.stem1 = None
        if image_size >= IMAGENET_STEM_AT:
            self.stem, self.stem1 = imagenet_stem(in_channels, C)
            c_pp = c_p = C
            reduction_prev, size = True, (image_size + 7) // 8
        else:
            c_pp = c_p = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_p, 3, padding=1, bias=False), nn.BatchNorm2d(c_p))
            reduction_prev, size = False, image_size
        c_curr, c_aux = C, c_p
        self.cells = nn.ModuleList()
        self.aux_at = reduction_layers(layers)[1]
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
                size = (size + 1) // 2
            cell = Cell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.aux_at:
                c_aux, aux_size = c_p, size
        self.aux_head = AuxiliaryHead(c_aux, num_classes, aux_size) if auxiliary else None
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        s0 = s1 = self.stem(x)
        if self.stem1 is not None:
            s1 = self.stem1(s0)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1)), aux


def count_parameters(model: nn.Module, exclude_aux: bool = True) -> int:
    """Trainable parameters, without the auxiliary head by default (as papers report)."""
    return sum(p.numel() for name, p in model.named_parameters() if not (exclude_aux and name.startswith("aux_head.")))


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on one image (torch's flop counter; a MAC counts as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)
