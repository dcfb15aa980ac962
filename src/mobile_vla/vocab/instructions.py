"""Instructions: the one place that knows the templates, sides and left/right swapping.

The simulator samples from :data:`TRAIN_TEMPLATES`; grounding evaluation uses
:data:`HELDOUT_TEMPLATES`, phrasings that no training template contains.
"""

from __future__ import annotations

import re

import numpy as np

SIDES = ("left", "right")

#: The real robot's instruction (English version used in its data).
CANONICAL_TEMPLATE = "Navigate around the obstacle on the {side} side and reach the {target}"

#: Templates used for training data. ``{side}`` is ``left``/``right``; ``{target}`` the goal object.
TRAIN_TEMPLATES = (
    CANONICAL_TEMPLATE,
    "Go around the box on the {side} and reach the {target}",
    "Pass the obstacle on its {side} side, then go to the {target}",
    "Take the {side} path around the boxes to the {target}",
    "Move to the {target}, keeping the obstacle on your {other}",
    "Drive past the box on the {side} and stop at the {target}",
)

#: Paraphrases held out from training, for measuring generalisation to new wording.
HELDOUT_TEMPLATES = (
    "Steer {side} of the obstacle and approach the {target}",
    "Head for the {target} by going {side} around the box",
    "Use the {side} lane to get to the {target}",
    "Circle the obstacle via the {side} and arrive at the {target}",
)

_SWAP = {"left": "right", "right": "left", "왼쪽": "오른쪽", "오른쪽": "왼쪽"}
_SIDE_RE = re.compile(r"\b(left|right)\b|왼쪽|오른쪽", re.IGNORECASE)


def other_side(side: str) -> str:
    return {"left": "right", "right": "left"}[side]


def format_instruction(template: str, side: str, target: str = "cup") -> str:
    """Fill a template. ``{other}`` is the opposite side (for "keep it on your right")."""
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return template.format(side=side, other=other_side(side), target=target)


def sample_instruction(side: str, rng: np.random.Generator, target: str = "cup", heldout: bool = False) -> str:
    templates = HELDOUT_TEMPLATES if heldout else TRAIN_TEMPLATES
    return format_instruction(templates[int(rng.integers(len(templates)))], side, target)


def canonical_instruction(side: str, target: str = "cup") -> str:
    return format_instruction(CANONICAL_TEMPLATE, side, target)


def side_of(instruction: str) -> str | None:
    """The side the robot must pass on, or ``None`` when the text names no side.

    "keep the obstacle on your right" means passing on the *left*; such phrasings mark
    the obstacle side with "keeping"/"keep", which flips the meaning.
    """
    words = [m.group(0).lower() for m in _SIDE_RE.finditer(instruction)]
    words = [{"왼쪽": "left", "오른쪽": "right"}.get(w, w) for w in words]
    if not words or len(set(words)) > 1:
        return None
    side = words[0]
    if re.search(r"\bkeep(ing)?\b", instruction, re.IGNORECASE):
        side = other_side(side)
    return side


def mirror_instruction(instruction: str) -> str:
    """Swap left and right (English and Korean), preserving capitalisation."""

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = _SWAP[word.lower()]
        return new.capitalize() if word[:1].isupper() else new

    return _SIDE_RE.sub(swap, instruction)
