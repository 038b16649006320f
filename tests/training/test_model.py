"""The training network is the seed card's ResNetSE (FACTS §4). Needs torch: not collected in the Home
Assistant environments (tests/training/conftest.py), which check the exported graph instead."""

from __future__ import annotations

import torch

from training.resnetse import ResNetSE, count_macs, count_parameters, fold_batchnorm


def test_parameter_count_and_output_shape() -> None:
    model = ResNetSE().eval()
    assert count_parameters(model) == 61_574
    with torch.no_grad():
        assert model(torch.zeros(3, 192, 24)).shape == (3, 4)


def test_multiply_adds_match_the_card() -> None:
    # Conv + Linear multiply-adds; the card's 10.73 M also counts the 4,608 adds of the time pooling.
    assert round((count_macs(ResNetSE()) + 64 * 3 * 24) / 1e6, 2) == 10.73


def test_batchnorm_folding_keeps_the_function() -> None:
    torch.manual_seed(0)
    model = ResNetSE()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 192, 24) * 3)
    model.eval()
    folded = fold_batchnorm(model)
    assert not [m for m in folded.modules() if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    x = torch.randn(4, 192, 24) * 3
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
