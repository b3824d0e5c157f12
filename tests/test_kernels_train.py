"""A few training steps with the kernels lower the loss on a fixed synthetic batch.

Each model memorises one seeded batch; a correct forward/backward/update loop must
then drive the loss down. The networks: the seed's CNN (conv, max-pool, dense,
softmax cross-entropy), a dense stack, a small LSTM language model, and a pre-LN
transformer block whose residual adds read earlier layers.
"""

from __future__ import annotations

import numpy as np
import pytest

from leptonsim.kernels import (
    Network,
    Optimizer,
    init_model_params,
    network,
    run_backward,
    run_forward,
    train_step,
)
from leptonsim.models import LayerStack, Model
from leptonsim.ops import GRU, Dense, Embedding, ReLU, SigmoidCrossEntropy, SoftmaxCrossEntropy, Tanh
from leptonsim.zoo import seed_cnn
from tests.helpers.kernels import lstm_lm_small, transformer_block


def train(
    model: Model | Network, x: np.ndarray, y: np.ndarray, optimizer: Optimizer, lr: float, steps: int = 5,
    dtype: type = np.float32,
) -> list[float]:
    """Losses before each of `steps` updates and after the last."""
    net = model if isinstance(model, Network) else network(model)
    params = init_model_params(net.model, np.random.default_rng(0), dtype)
    state: dict = {}
    losses = [train_step(net, params, state, x, y, optimizer, lr) for _ in range(steps)]
    return [*losses, float(run_forward(net, params, x, y).output)]


def images(batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    return rng.standard_normal((batch, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, batch)


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e-3), ("sgd", 0.05)])
def test_seed_cnn_steps_lower_the_loss(optimizer: Optimizer, lr: float) -> None:
    x, y = images()
    losses = train(seed_cnn(), x, y, optimizer, lr)
    # ten random classes start near ln(10) = 2.30
    assert abs(losses[0] - np.log(10)) < 0.5
    assert losses[-1] < 0.6 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_train_step_reports_the_loss_before_its_update() -> None:
    x, y = images(4)
    model = seed_cnn()
    params = init_model_params(model, np.random.default_rng(0))
    before = float(run_forward(model, params, x, y).output)
    assert train_step(model, params, {}, x, y, "sgd", 0.01) == before
    assert float(run_forward(model, params, x, y).output) < before


def dense_stack(features: int = 6, width: int = 16, depth: int = 3) -> Model:
    s = LayerStack("dense_stack", (features,))
    for i in range(depth):
        s.add(f"fc{i}", Dense(width))
        s.add(f"fc{i}.act", ReLU() if i % 2 else Tanh())
    s.add("logit", Dense(1))
    s.add("loss", SigmoidCrossEntropy())
    return s.build()


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e-2), ("sgd", 0.5)])
def test_dense_stack_steps_lower_the_loss(optimizer: Optimizer, lr: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 6))
    y = (x[:, :1] + x[:, 1:2] > 0).astype(np.float64)
    losses = train(dense_stack(), x, y, optimizer, lr, steps=10, dtype=np.float64)
    assert losses[-1] < 0.8 * losses[0], losses


def test_lstm_lm_steps_lower_the_loss() -> None:
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 12, (4, 5))
    labels = np.roll(tokens, -1, axis=1)  # next-token prediction
    losses = train(lstm_lm_small(), tokens, labels, "adam", 5e-2, steps=10)
    assert losses[-1] < 0.8 * losses[0], losses


def test_gru_classifier_steps_lower_the_loss() -> None:
    s = LayerStack("gru_clf", (6,))
    s.add("embedding", Embedding(10, 4))
    s.add("gru", GRU(8, return_sequences=False))
    s.add("dense", Dense(3))
    s.add("loss", SoftmaxCrossEntropy())
    rng = np.random.default_rng(3)
    losses = train(s.build(), rng.integers(0, 10, (8, 6)), rng.integers(0, 3, 8), "adam", 5e-2, steps=10)
    assert losses[-1] < 0.8 * losses[0], losses


def test_transformer_block_steps_lower_the_loss() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 3, 4)).astype(np.float32)
    labels = rng.integers(0, 5, (4, 3))
    losses = train(transformer_block(), x, labels, "adam", 1e-2, steps=10)
    assert losses[-1] < 0.8 * losses[0], losses


def test_seed_cnn_float16_forward_tracks_float32() -> None:
    """The precision study's starting point: the same weights and batch in two dtypes."""
    x, y = images(4)
    model = seed_cnn()
    params = init_model_params(model, np.random.default_rng(0), np.float16)
    wide = {k: {n: a.astype(np.float32) for n, a in v.items()} for k, v in params.items()}
    x16 = x.astype(np.float16)
    loss16 = run_forward(model, params, x16, y)
    loss32 = run_forward(model, wide, x16.astype(np.float32), y)
    assert loss16.output.dtype == np.float16
    assert float(loss16.output) == pytest.approx(float(loss32.output), rel=1e-2)
    _, grads = run_backward(model, params, loss16)
    assert all(g.dtype == np.float16 for layer in grads.values() for g in layer.values())
