"""Class-balanced loss: the loop's mean NLL plus the plugin's term is the class-balanced NLL, by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikecl.cl.minibatch import Batch
from spikecl.cl.plugins import ClassBalancedLoss
from spikecl.cl.plugins.balanced_loss import class_balanced_weights

SCORES = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.5, -0.5, 0.0], [0.0, 3.0, 1.0], [-1.0, 0.0, 2.5]]
LABELS = [0, 0, 0, 1, 2]  # class 0 three times, classes 1 and 2 once


def nll(row, y):
    return math.log(sum(math.exp(s) for s in row)) - row[y]


def total_loss(plugin, scores, labels):
    """What the loop adds up: mean NLL of the minibatch plus the plugin's term."""
    mean = F.nll_loss(F.log_softmax(scores, dim=1), labels)
    term = plugin.loss(None, Batch(None, labels, torch.zeros(len(labels), dtype=torch.bool), None, 0), scores)
    return mean if term is None else mean + term


def test_total_is_the_class_balanced_nll():
    scores = torch.tensor(SCORES, requires_grad=True)
    labels = torch.tensor(LABELS)
    total = total_loss(ClassBalancedLoss(strength=1.0), scores, labels)
    losses = [nll(r, y) for r, y in zip(SCORES, LABELS)]
    # 3 classes present: each weighs 1/3, shared by its samples
    by_hand = (losses[0] + losses[1] + losses[2]) / 9 + losses[3] / 3 + losses[4] / 3
    assert total.item() == pytest.approx(by_hand, rel=1e-6)
    mean = sum(losses) / 5
    assert abs(by_hand - mean) > 0.1  # the case tells the two apart
    total.backward()
    # d/ds of w * nll: w * (softmax(s) - onehot(y))
    w = [1 / 9] * 3 + [1 / 3] * 2
    for i, (row, y) in enumerate(zip(SCORES, LABELS)):
        z = sum(math.exp(s) for s in row)
        expected = [w[i] * (math.exp(s) / z - (k == y)) for k, s in enumerate(row)]
        assert scores.grad[i].tolist() == pytest.approx(expected, abs=1e-6)


def test_strength_interpolates_and_equal_counts_change_nothing():
    scores, labels = torch.tensor(SCORES), torch.tensor(LABELS)
    mean = F.nll_loss(F.log_softmax(scores, dim=1), labels).item()
    balanced = total_loss(ClassBalancedLoss(strength=1.0), scores, labels).item()
    half = total_loss(ClassBalancedLoss(strength=0.5), scores, labels).item()
    assert half == pytest.approx((mean + balanced) / 2, rel=1e-6)
    plugin = ClassBalancedLoss(strength=1.0)
    even = torch.tensor([0, 2, 2, 0, 1, 1])
    assert plugin.loss(None, Batch(None, even, None, None, 0), torch.zeros(6, 3)) is None
    assert plugin.loss(None, Batch(None, torch.tensor([1, 1]), None, None, 0), torch.zeros(2, 3)) is None
    assert ClassBalancedLoss(strength=0).loss(None, Batch(None, labels, None, None, 0), scores) is None


def test_weights_sum_to_one_over_the_classes_present():
    w = class_balanced_weights(torch.tensor([4, 4, 1, 4, 7, 7]))
    assert w.tolist() == pytest.approx([1 / 9, 1 / 9, 1 / 3, 1 / 9, 1 / 6, 1 / 6])
    assert w.sum().item() == pytest.approx(1.0)
