"""MicroLoRA: the engine's latency model, adapted online by a rank-2 LoRA.

    h = tanh((W0 + B A) x),    y^ = v . h + c,    y = log(latency in us)

W0 (hidden x dim) is a fixed random projection (seeded, scaled
1/sqrt(dim)), the frozen base of LoRA (Hu et al., 2021); A (rank x dim,
small random) and B (hidden x rank, zero) are the adapter, so the adapted
map starts equal to the base and B receives the first gradients.  The head
(v, c) is trained with the adapter.  c starts at the first target seen, so
the first predictions are of the right magnitude.

Every learned trajectory is one SGD step on 0.5 (y^ - y)^2 with analytic
gradients (:meth:`MicroLoRA.gradient`; a test checks them against finite
differences); with an :class:`~ruvector_dag.engine.ewc.OnlineEWC` the step is its
proximal step, which keeps parameters important to earlier tasks near
their anchor.  The error term is clipped to +-10 so one wild latency cannot
blow the weights up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..definitions.errors import InvalidParameter
from ..definitions.validation import POSITIVE_INT, RATE, validate

if TYPE_CHECKING:
    from .ewc import OnlineEWC

#: Largest |y^ - y| (in log-latency units) a single step acts on.
MAX_ERROR = 10.0


class MicroLoRA:
    """Latency predictor with a rank-``rank`` adapter; see the module docstring."""

    def __init__(self, dim: int = 32, hidden: int = 16, rank: int = 2, learning_rate: float = 0.02,
                 seed: int = 0) -> None:
        for name, value in (("dim", dim), ("hidden", hidden), ("rank", rank)):
            validate(name, value, POSITIVE_INT)
        validate("learning_rate", learning_rate, RATE)
        self.dim, self.hidden, self.rank = int(dim), int(hidden), int(rank)
        self.learning_rate = float(learning_rate)
        rng = np.random.default_rng(seed)
        self.W0 = rng.normal(0.0, 1.0 / np.sqrt(dim), (hidden, dim))
        self.A = rng.normal(0.0, 0.1 / np.sqrt(dim), (rank, dim))
        self.B = np.zeros((hidden, rank))
        self.v = np.zeros(hidden)
        self.c = 0.0
        self.initialised = False  # c set from the first target

    # -- parameters as one flat vector: [v, c, A, B] ---------------------------

    @property
    def n_params(self) -> int:
        return self.hidden + 1 + self.rank * self.dim + self.hidden * self.rank

    @property
    def param_blocks(self) -> tuple[int, ...]:
        """Sizes of the blocks v, c, A, B in the flat parameter vector."""
        return (self.hidden, 1, self.rank * self.dim, self.hidden * self.rank)

    def params(self) -> np.ndarray:
        return np.concatenate([self.v, [self.c], self.A.ravel(), self.B.ravel()])

    def set_params(self, flat: np.ndarray) -> None:
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape != (self.n_params,):
            raise InvalidParameter(f"expected {self.n_params} parameters, got shape {flat.shape}")
        h, r, d = self.hidden, self.rank, self.dim
        self.v = flat[:h].copy()
        self.c = float(flat[h])
        self.A = flat[h + 1:h + 1 + r * d].reshape(r, d).copy()
        self.B = flat[h + 1 + r * d:].reshape(h, r).copy()

    # -- model ---------------------------------------------------------------

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1] != self.dim or X.ndim not in (1, 2):
            raise InvalidParameter(f"expected inputs of dimension {self.dim}, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InvalidParameter("inputs must be finite")
        return X

    def predict(self, X: np.ndarray) -> Any:
        """Predicted log latency for x (d,) -> float, or X (n, d) -> (n,)."""
        X = self._check(X)
        W = self.W0 + self.B @ self.A
        return np.tanh(X @ W.T) @ self.v + self.c

    def gradient(self, x: np.ndarray, y: float) -> tuple[float, np.ndarray]:
        """Loss 0.5 (y^ - y)^2 and its gradient in the flat parameter order."""
        x = self._check(x)
        ax = self.A @ x
        h = np.tanh(self.W0 @ x + self.B @ ax)
        e = float(h @ self.v + self.c - y)
        loss = 0.5 * e * e
        e = float(np.clip(e, -MAX_ERROR, MAX_ERROR))
        dpre = e * self.v * (1.0 - h * h)
        g_v = e * h
        g_B = np.outer(dpre, ax)
        g_A = np.outer(self.B.T @ dpre, x)
        return loss, np.concatenate([g_v, [e], g_A.ravel(), g_B.ravel()])

    def update(self, x: np.ndarray, y: float, ewc: OnlineEWC | None = None) -> float:
        """One SGD step (proximal under EWC); returns the loss before the step."""
        if not np.isfinite(y):
            raise InvalidParameter(f"target must be finite, got {y}")
        if not self.initialised:
            self.c = float(y)
            self.initialised = True
        from .ewc import sgd_step

        loss, grad = self.gradient(x, y)
        self.set_params(sgd_step(self.params(), grad, self.learning_rate, ewc))
        return loss

    # -- persistence -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "rank": self.rank, "learning_rate": self.learning_rate,
                "initialised": self.initialised, "c": self.c,
                "W0": self.W0.copy(), "A": self.A.copy(), "B": self.B.copy(), "v": self.v.copy()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> MicroLoRA:
        model = cls(int(state["dim"]), int(state["hidden"]), int(state["rank"]), float(state["learning_rate"]))
        model.W0 = np.array(state["W0"], dtype=np.float64)
        model.A = np.array(state["A"], dtype=np.float64)
        model.B = np.array(state["B"], dtype=np.float64)
        model.v = np.array(state["v"], dtype=np.float64)
        model.c = float(state["c"])
        model.initialised = bool(state["initialised"])
        return model
