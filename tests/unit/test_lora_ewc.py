"""MicroLoRA (analytic gradients, learning) and EWC++ (boundaries, protection)."""

from __future__ import annotations

import numpy as np
import pytest

from ruvector_dag.definitions.errors import InvalidParameter
from ruvector_dag.engine.ewc import OnlineEWC
from ruvector_dag.engine.lora import MicroLoRA


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    m = MicroLoRA(dim=6, hidden=5, rank=2, seed=1)
    m.set_params(rng.normal(0, 0.5, m.n_params))
    x, y = rng.normal(size=6), 0.7
    _loss, g = m.gradient(x, y)
    theta = m.params()
    eps = 1e-6
    num = np.zeros_like(theta)
    for i in range(len(theta)):
        for sign in (1, -1):
            t = theta.copy()
            t[i] += sign * eps
            m.set_params(t)
            num[i] += sign * 0.5 * (m.predict(x) - y) ** 2 / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


def task(rng: np.random.Generator, center: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = center + 0.3 * rng.normal(size=(n, len(center)))
    y = 2.0 + np.sin(X[:, 0] * 2) + X[:, 1] - 0.5 * X[:, 2] ** 2
    return X, y


def test_learning_reduces_loss_and_moves_the_adapter() -> None:
    rng = np.random.default_rng(2)
    m = MicroLoRA(dim=8, learning_rate=0.05, seed=3)
    A0, B0 = m.A.copy(), m.B.copy()
    X, y = task(rng, np.zeros(8), 3000)
    first = np.mean([m.update(x, t) for x, t in zip(X[:200], y[:200])])
    for x, t in zip(X[200:], y[200:]):
        m.update(x, t)
    final = float(np.mean((m.predict(X[:200]) - y[:200]) ** 2) / 2)
    assert final < 0.2 * first
    assert not np.allclose(m.A, A0) and not np.allclose(m.B, B0)
    clone = MicroLoRA.from_state_dict(m.state_dict())
    np.testing.assert_array_equal(clone.predict(X[:50]), m.predict(X[:50]))


def train(m: MicroLoRA, ewc: OnlineEWC | None, X: np.ndarray, y: np.ndarray) -> list[bool]:
    out = []
    for x, t in zip(X, y):
        before = m.params()
        loss = m.update(x, t, ewc)
        if ewc is not None:
            out.append(ewc.observe_loss(loss, before))
    return out


def test_ewc_protects_task_a_and_still_learns_b() -> None:
    errs = {}
    for lam in (100.0, 2000.0, 15000.0):
        rng = np.random.default_rng(4)
        m = MicroLoRA(dim=8, learning_rate=0.05, seed=5)
        ewc = OnlineEWC(m.n_params, lambda_=lam, lambda_max=lam, blocks=m.param_blocks)
        ca, cb = np.zeros(8), np.full(8, 2.0)
        XA, yA = task(rng, ca, 2000)
        XB, yB = task(rng, cb, 2000)
        yB = yB + 3.0
        train(m, ewc, XA, yA)
        ewc.consolidate(m.params())
        b_before = float(np.abs(m.predict(XB[:200]) - yB[:200]).mean())
        train(m, ewc, XB, yB)
        errs[lam] = (float(np.abs(m.predict(XA[:200]) - yA[:200]).mean()),
                     float(np.abs(m.predict(XB[:200]) - yB[:200]).mean()), b_before)
        assert ewc.lambda_ <= lam
    a_min, _, _ = errs[100.0]
    a_def, b_def, b0 = errs[2000.0]
    a_max, _, _ = errs[15000.0]
    assert a_max < a_def < 0.7 * a_min, errs  # the stronger lambda, the better A is kept
    assert b_def < 0.9 * b0, errs  # at the default lambda B is still learned (less than without EWC:
    assert errs[100.0][1] < b_def, errs  # the price of stability is plasticity)


def test_boundary_detection() -> None:
    rng = np.random.default_rng(6)
    m = MicroLoRA(dim=8, learning_rate=0.05, seed=7)
    ewc = OnlineEWC(m.n_params, blocks=m.param_blocks)
    XA, yA = task(rng, np.zeros(8), 1500)
    fired = train(m, ewc, XA, yA)
    assert sum(fired[300:]) == 0  # stationary: no boundary once learned
    XB, yB = task(rng, np.full(8, 2.0), 300)
    fired_b = train(m, ewc, XB, yB + 5.0)
    assert any(fired_b[:80]) and ewc.tasks >= 1
    assert ewc.anchor is not None


def test_proximal_step_and_validation() -> None:
    ewc = OnlineEWC(3, lambda_=100.0, lambda_max=200.0)
    theta, g = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5, 1.0])
    np.testing.assert_allclose(ewc.proximal_step(theta, g, 0.1), theta - 0.1 * g)  # no anchor yet
    ewc.accumulate(g)
    ewc.consolidate(theta)
    ewc.consolidate(theta)
    assert ewc.tasks == 2 and ewc.lambda_ == 150.0
    for _ in range(5):
        ewc.consolidate(theta)
    assert ewc.lambda_ == 200.0  # capped at lambda_max
    step = ewc.proximal_step(theta, g, 0.1)
    assert np.all(np.abs(step - theta) < np.abs(0.1 * g))  # pulled back towards the anchor
    assert ewc.penalty(theta) == 0.0 and ewc.penalty(step) > 0
    clone = OnlineEWC.from_state_dict(ewc.state_dict())
    np.testing.assert_array_equal(clone.proximal_step(theta, g, 0.1), step)
    for kwargs in ({"lambda_": 0.0}, {"lambda_": 10.0, "lambda_max": 5.0}, {"decay": 1.0}, {"blocks": (1, 1)}):
        with pytest.raises(InvalidParameter):
            OnlineEWC(3, **kwargs)  # type: ignore[arg-type]
