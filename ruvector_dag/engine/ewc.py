"""EWC++: elastic weight consolidation with an online Fisher estimate.

Chaudhry et al., "Riemannian Walk for Incremental Learning" (2018), EWC++:

* the diagonal Fisher information is a running average of squared
  gradients, F <- decay F + (1 - decay) g^2 (:meth:`OnlineEWC.accumulate`);
* at a task boundary the current parameters become the anchor theta* and F,
  normalised to mean 1 within each parameter block (relative importance,
  clipped at 10), becomes the consolidated importance F*.  Per block,
  because the blocks' gradient scales differ by parameterisation, not by
  importance: a LoRA adapter starts with B = 0, so A's gradients are
  second-order small while the adapter is still unused, and a globally
  normalised Fisher would leave the whole adapter unprotected once it does
  matter; lambda grows by ``growth`` per task, from
  ``lambda_`` (``ruvector.dag_ewc_lambda``) up to ``lambda_max``
  (``ruvector.dag_ewc_max_lambda``);
* learning then minimises loss + (s / 2) sum_i F*_i (theta_i - theta*_i)^2
  with s = lambda / lambda_ref (lambda_ref = 1000: at lambda = 1000 a
  parameter of average importance is held as strongly as one SGD step
  moves it).  :meth:`OnlineEWC.proximal_step` does this in closed form, so
  it is stable for any lambda.

Task boundaries (:meth:`OnlineEWC.observe_loss`): the log-loss of every
learned sample is watched.  The last ``window`` samples are compared with
all earlier ones since the previous boundary; when their mean exceeds the
earlier mean by ``boundary_z`` standard errors, the workload has changed.
The anchor is then the model as it was *before* that window (a snapshot is
kept per sample of the window), i.e. the model of the task just finished,
not one already bent towards the new one.

Between boundaries the engine moves the anchor forward at every background
cycle (:meth:`OnlineEWC.refresh_anchor`, as online EWC does, Schwarz et al.
2018): the penalty then restrains how far one cycle's batch can drag the
model from what was learned up to the last cycle, without holding a young
model to its first, immature state.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from ..definitions.errors import InvalidParameter
from ..definitions.validation import POSITIVE, POSITIVE_INT, Interval, validate

#: Clip of the normalised importance F*.
MAX_IMPORTANCE = 10.0


class OnlineEWC:
    """Online diagonal Fisher, task-boundary detection and the proximal EWC step."""

    def __init__(self, n_params: int, lambda_: float = 2000.0, lambda_max: float = 15000.0,
                 lambda_ref: float = 1000.0, decay: float = 0.95, growth: float = 1.5, boundary_z: float = 3.0,
                 window: int = 32, blocks: tuple[int, ...] | None = None) -> None:
        validate("n_params", n_params, POSITIVE_INT)
        validate("lambda_max", lambda_max, POSITIVE)
        validate("lambda", lambda_, Interval("real", 0.0, lambda_max, "right"))  # (0, lambda_max]
        validate("lambda_ref", lambda_ref, POSITIVE)
        validate("decay", decay, Interval("real", 0.0, 1.0, "neither"))
        validate("growth", growth, Interval("real", 1.0, None))
        validate("boundary_z", boundary_z, POSITIVE)
        validate("window", window, Interval("integer", 2, None))
        self.n_params = int(n_params)
        self.blocks = tuple(int(b) for b in blocks) if blocks else (self.n_params,)
        if sum(self.blocks) != self.n_params or min(self.blocks) < 1:
            raise InvalidParameter(f"blocks {self.blocks} must be positive sizes adding up to {self.n_params}")
        self.lambda_ = float(lambda_)
        self.lambda_max = float(lambda_max)
        self.lambda_ref = float(lambda_ref)
        self.decay = float(decay)
        self.growth = float(growth)
        self.boundary_z = float(boundary_z)
        self.window = int(window)
        self.fisher = np.zeros(self.n_params)
        self.importance = np.zeros(self.n_params)  # F*, set at consolidation
        self.anchor: np.ndarray | None = None
        self.tasks = 0
        self._recent: deque[tuple[float, np.ndarray]] = deque()
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0

    @property
    def strength(self) -> float:
        return self.lambda_ / self.lambda_ref

    def accumulate(self, grad: np.ndarray) -> None:
        g = np.asarray(grad, dtype=np.float64)
        self.fisher *= self.decay
        self.fisher += (1.0 - self.decay) * g * g

    def consolidate(self, params: np.ndarray) -> None:
        """A task ended: anchor on params, the current Fisher becomes the importance, lambda grows."""
        self.refresh_anchor(params)
        self.tasks += 1
        if self.tasks > 1:
            self.lambda_ = min(self.lambda_ * self.growth, self.lambda_max)

    def refresh_anchor(self, params: np.ndarray) -> None:
        """Move the anchor to params within the same task (online EWC; no new task, lambda unchanged)."""
        self.anchor = np.array(params, dtype=np.float64)
        self.importance = np.ones(self.n_params)
        start = 0
        for size in self.blocks:
            block = self.fisher[start:start + size]
            mean = float(block.mean())
            if mean > 0:
                self.importance[start:start + size] = np.minimum(block / mean, MAX_IMPORTANCE)
            start += size

    def end_cycle(self, params: np.ndarray) -> None:
        """A background cycle ended: the first one anchors the model's first task (consolidate);
        later ones move the anchor to what was learned up to now, the thing to protect next (online
        EWC, refresh_anchor)."""
        if self.tasks == 0:
            self.consolidate(params)
        else:
            self.refresh_anchor(params)

    def observe_loss(self, loss: float, params: np.ndarray) -> bool:
        """Record a learned sample's loss (params: the model before its step); True at a task boundary."""
        value = math.log1p(max(float(loss), 0.0))
        self._recent.append((value, np.array(params, dtype=np.float64)))
        if len(self._recent) > self.window:
            old, _ = self._recent.popleft()
            self._count += 1
            delta = old - self._mean
            self._mean += delta / self._count
            self._m2 += delta * (old - self._mean)
        if len(self._recent) < self.window or self._count < self.window:
            return False
        recent = sum(v for v, _ in self._recent) / self.window
        std = math.sqrt(self._m2 / (self._count - 1)) if self._count > 1 else 0.0
        stderr = std / math.sqrt(self.window) + 1e-3
        if (recent - self._mean) / stderr <= self.boundary_z:
            return False
        self.consolidate(self._recent[0][1])
        self._recent.clear()
        self._count, self._mean, self._m2 = 0, 0.0, 0.0
        return True

    def penalty(self, params: np.ndarray) -> float:
        if self.anchor is None:
            return 0.0
        d = np.asarray(params, dtype=np.float64) - self.anchor
        return 0.5 * self.strength * float((self.importance * d * d).sum())

    def proximal_step(self, params: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
        """argmin of the linearised loss + the EWC penalty + the step's proximity term (closed form)."""
        theta = np.asarray(params, dtype=np.float64)
        g = np.asarray(grad, dtype=np.float64)
        if self.anchor is None or self.strength == 0.0:
            return theta - lr * g
        kappa = lr * self.strength * self.importance
        return (theta - lr * g + kappa * self.anchor) / (1.0 + kappa)

    def state_dict(self) -> dict[str, Any]:
        return {"n_params": self.n_params, "lambda_": self.lambda_, "lambda_max": self.lambda_max,
                "lambda_ref": self.lambda_ref, "decay": self.decay, "growth": self.growth,
                "boundary_z": self.boundary_z, "window": self.window, "tasks": self.tasks,
                "blocks": np.array(self.blocks, dtype=np.int64),
                "count": self._count, "mean": self._mean, "m2": self._m2,
                "fisher": self.fisher.copy(), "importance": self.importance.copy(),
                "anchor": (self.anchor.copy() if self.anchor is not None else np.zeros(0))}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> OnlineEWC:
        ewc = cls(int(state["n_params"]), float(state["lambda_"]), float(state["lambda_max"]),
                  float(state["lambda_ref"]), float(state["decay"]), float(state["growth"]),
                  float(state["boundary_z"]), int(state["window"]),
                  tuple(int(b) for b in np.asarray(state["blocks"]).ravel()))
        ewc.tasks = int(state["tasks"])
        ewc._count, ewc._mean, ewc._m2 = int(state["count"]), float(state["mean"]), float(state["m2"])
        ewc.fisher = np.array(state["fisher"], dtype=np.float64)
        ewc.importance = np.array(state["importance"], dtype=np.float64)
        anchor = np.asarray(state["anchor"], dtype=np.float64)
        ewc.anchor = anchor.copy() if anchor.size else None
        return ewc


def sgd_step(params: np.ndarray, grad: np.ndarray, learning_rate: float, ewc: OnlineEWC | None) -> np.ndarray:
    """One SGD step of a model's flat parameters: EWC++'s proximal step when ``ewc`` is given (its
    Fisher estimate takes the gradient in first), else plain gradient descent."""
    if ewc is None:
        return params - learning_rate * grad
    ewc.accumulate(grad)
    return ewc.proximal_step(params, grad, learning_rate)
