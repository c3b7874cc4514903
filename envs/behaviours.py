"""The pouring behaviours a scene allows, and how each is measured from ground truth.

A behaviour names a receptacle and the fraction of the particles that should end in it, the rest
kept in the cup: ``bowl`` (pour everything into the bowl), ``jar`` (everything into the jar, in the
two-receptacle scene) and ``half`` (about half into the bowl, then stop). Its score is 1 when the
final fractions are exactly that and falls linearly with the particles put elsewhere or missing;
the behaviour a rollout *performed* is the best-scoring one, if it scores at least 0.5 (else
``none``). These are the ground truth of the swap test (docs/world.md, "Several pouring tasks").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RECEPTACLES = ("bowl", "jar")
NONE = "none"


@dataclass(frozen=True)
class Behaviour:
    """Pour ``goal`` of the particles into ``receptacle`` and keep the rest in the cup."""

    name: str
    receptacle: str
    goal: float

    def score(self, fractions: dict[str, float]) -> float:
        """1 - (|target - goal| + shortfall of the cup below 1 - goal) / goal, clipped to [0, 1].

        ``fractions`` maps ``bowl``, ``jar`` (absent: 0) and ``cup`` to fractions of all particles.
        For ``goal`` 1 this is the fraction in the receptacle.
        """
        target = fractions.get(self.receptacle, 0.0)
        missing = max(0.0, (1.0 - self.goal) - fractions["cup"])
        return min(1.0, max(0.0, 1.0 - (abs(target - self.goal) + missing) / self.goal))


BEHAVIOURS = {
    "bowl": Behaviour("bowl", "bowl", 1.0),
    "jar": Behaviour("jar", "jar", 1.0),
    "half": Behaviour("half", "bowl", 0.5),
}
SCENES = {"bowl": ("bowl",), "bowl_jar": ("bowl", "jar")}  # scene -> receptacles it holds


def behaviours_of(scene: str) -> tuple[str, ...]:
    """The behaviours a scene allows (those whose receptacle it holds), in ``BEHAVIOURS`` order."""
    return tuple(n for n, b in BEHAVIOURS.items() if b.receptacle in SCENES[scene])


def check_behaviour(scene: str, name: str) -> None:
    """Raise ValueError naming ``name`` and the behaviours ``scene`` allows unless it is one of them."""
    if name not in behaviours_of(scene):
        raise ValueError(f"behaviour {name!r} is not one of the scene {scene!r}'s: {list(behaviours_of(scene))}")


def pour_side(states) -> tuple[int, int]:
    """The frame of an episode's greatest tilt and the side of the scene the cup poured on there (the sign
    of its y: -1, 0 or 1), from its states (``cup_position`` (T, 3), ``tilt`` (T,))."""
    t = int(np.argmax(states["tilt"]))
    return t, int(np.sign(states["cup_position"][t, 1]))


def performed(fractions: dict[str, float], scene: str) -> str:
    """The behaviour of ``scene`` that the final ``fractions`` score best on, or ``none`` below 0.5."""
    scores = {n: BEHAVIOURS[n].score(fractions) for n in behaviours_of(scene)}
    best = max(scores, key=scores.get)
    return best if scores[best] >= 0.5 else NONE
