"""Thompson sampling over a small set of arms with rewards in [0, 1].

Used by the engine to choose, per learned pattern, the attention mechanism
that pools its plan embeddings (:mod:`ruvector_dag.runtime.worker`): the reward of
a choice is how well the latency model predicts the query when the plan is
pooled that way.

Each arm keeps a Beta(alpha, beta) posterior over its mean reward.  A
fractional reward r updates it as alpha += r, beta += 1 - r (the Bernoulli
likelihood's sufficient statistics, generalised to [0, 1]; see
Agrawal & Goyal, "Analysis of Thompson Sampling", 2012).  ``choose`` samples
every posterior and takes the best draw; with probability ``exploration``
it instead picks an arm uniformly, so that no arm is starved however
confident the posteriors become (the ``ruvector.dag_attention_exploration``
setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..definitions.validation import POSITIVE, POSITIVE_INT, UNIT, Interval, validate


@dataclass
class ThompsonBandit:
    """Beta-Bernoulli Thompson sampling with uniform exploration."""

    n_arms: int
    exploration: float = 0.1
    prior: float = 1.0
    alpha: np.ndarray = field(init=False)
    beta: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        validate("n_arms", self.n_arms, POSITIVE_INT)
        validate("exploration", self.exploration, UNIT)
        validate("prior", self.prior, POSITIVE)
        self.alpha = np.full(self.n_arms, self.prior)
        self.beta = np.full(self.n_arms, self.prior)

    def choose(self, rng: np.random.Generator) -> int:
        if rng.random() < self.exploration:
            return int(rng.integers(self.n_arms))
        return int(np.argmax(rng.beta(self.alpha, self.beta)))

    def update(self, arm: int, reward: float) -> None:
        validate("arm", arm, Interval("integer", 0, self.n_arms, "left"))
        r = min(max(float(reward), 0.0), 1.0)
        self.alpha[arm] += r
        self.beta[arm] += 1.0 - r

    @property
    def means(self) -> np.ndarray:
        """Posterior mean reward of each arm."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def trials(self) -> np.ndarray:
        return self.alpha + self.beta - 2.0 * self.prior

    def best(self) -> int:
        """The arm with the highest posterior mean (ties: the lowest index)."""
        return int(np.argmax(self.means))

    def merge(self, other: ThompsonBandit) -> None:
        """Pool the evidence of another bandit over the same arms (pattern merge)."""
        self.alpha += other.alpha - other.prior
        self.beta += other.beta - other.prior
