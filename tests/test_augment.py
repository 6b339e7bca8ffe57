"""CIFAR's crop and flip on a batch on its device: every image is one of torchvision's crops of
the padded image, flipped or not; offsets and flips vary per image; the fill is a black pixel."""

import torch
from torchvision.transforms import v2

from sddarts.trainables.data.augment import black_pixel, crop_flip
from sddarts.trainables.data.datasets import INFO


def _candidates(image, fill, pad=4):
    c, h, w = image.shape
    padded = fill.view(c, 1, 1).expand(c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, pad:pad + h, pad:pad + w] = image
    crops = [padded[:, i:i + h, j:j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]
    return crops + [c_.flip(-1) for c_ in crops]


def test_each_image_is_a_padded_crop_flipped_or_not_with_varied_offsets():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    fill = black_pixel(INFO["cifar10"])
    out = crop_flip(x, fill)
    assert out.shape == x.shape
    picked = []
    for image, result in zip(x, out):
        matches = [k for k, cand in enumerate(_candidates(image, fill)) if torch.equal(cand, result)]
        assert matches, "not a crop of the padded image"
        picked.append(matches[0])
    assert len(set(picked)) > 20 and any(k >= 81 for k in picked) and any(k < 81 for k in picked)


def test_the_fill_is_what_torchvision_pads_a_uint8_image_with_after_normalising():
    black = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(INFO["cifar10"].mean, INFO["cifar10"].std)])(
        torch.zeros(3, 1, 1, dtype=torch.uint8))
    torch.testing.assert_close(black_pixel(INFO["cifar10"]), black.view(3))
