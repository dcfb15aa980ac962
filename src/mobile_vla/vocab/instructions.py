"""Instructions: the one place that knows the templates, sides and left/right swapping.

Instructions come in named **families**, each with a training part and a held-out part
whose sentences never occur in training (for measuring generalisation to new wording):

- ``paraphrase`` — wordings of "pass on the X side";
- ``relational`` — the side is given by where the obstacle should stay ("keep the box on
  your right"), so the route is the opposite word;
- ``negated`` — the side *not* to take ("don't pass on the left");
- ``korean`` — the real robot's original Korean instruction and Korean paraphrases.

``no-side`` instructions ("reach the cup") name no side: the robot may take either.

Training data draws a family for each episode, uniformly unless ``family_weights`` say
otherwise. The draw sets the model's prior for wording it has not seen: drawn uniformly, the
English side word names the route in only a third of the episodes (relational and negated
sentences flip it), so a sentence without a recognised cue is read as flipped.

Templates are kept per **target** (the object a simulator task's instructions name, see
``mobile_vla.sim.tasks``): for the ``cup`` the side word names the *route* around the
obstacle; for the ``basket`` it names the *target* (which of two baskets). Placeholders:
``{side}``/``{other}`` (English side and its opposite), ``{side_ko}``/``{other_ko}``
(Korean), ``{target}``/``{target_ko}``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import numpy as np

SIDES = ("left", "right")
FAMILIES = ("paraphrase", "relational", "negated", "korean")
NO_SIDE = "no-side"  # the family of instructions that name no side
TRAINING = "training"  # every family's training part, as the data generator samples it

#: The real robot's instruction (English version used in its data).
CANONICAL_TEMPLATE = "Navigate around the obstacle on the {side} side and reach the {target}"
#: The real robot's original Korean instruction.
ROBOT_KOREAN_TEMPLATE = "가장 {side_ko} 외곽으로 돌아 {target_ko}까지 가세요"
#: The real robot's basket-batch instruction.
BASKET_TEMPLATE = "Navigate to the gray basket on the {side}"

_KOREAN_SIDES = {"left": "왼쪽", "right": "오른쪽"}
_KOREAN_NOUNS = {"cup": "컵", "basket": "바구니"}


@dataclasses.dataclass(frozen=True)
class Family:
    """One family's templates: ``train`` for data, ``heldout`` for evaluation only."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]


#: ``TEMPLATES[target][family]``; targets without an entry use the ``cup`` templates.
TEMPLATES: dict[str, dict[str, Family]] = {
    "cup": {
        "paraphrase": Family(
            train=(
                CANONICAL_TEMPLATE,
                "Go around the box on the {side} and reach the {target}",
                "Pass the obstacle on its {side} side, then go to the {target}",
                "Take the {side} path around the boxes to the {target}",
                "Drive past the box on the {side} and stop at the {target}",
                "Go {side} past the obstacle to the {target}",
            ),
            heldout=(
                "Steer {side} of the obstacle and approach the {target}",
                "Head for the {target} by going {side} around the box",
                "Use the {side} lane to get to the {target}",
                "Circle the obstacle via the {side} and arrive at the {target}",
            ),
        ),
        "relational": Family(
            train=(
                "Move to the {target}, keeping the obstacle on your {other}",
                "Keep the box on your {other} and go to the {target}",
                "Reach the {target} with the obstacle on your {other} side",
                "Go to the {target} so that the boxes stay on your {other}",
            ),
            heldout=(
                "Leave the obstacle to your {other} on the way to the {target}",
                "With the box to your {other}, continue to the {target}",
                "Get to the {target} while the obstacle remains at your {other}",
            ),
        ),
        "negated": Family(
            train=(
                "Don't pass the obstacle on the {other}; reach the {target}",
                "Do not take the {other} path to the {target}",
                "Go to the {target}, but not around the {other} side of the box",
                "Never pass the box on the {other}, go to the {target}",
                "Avoid the {other} side of the obstacle and reach the {target}",
                "Reach the {target} without passing the box on the {other}",
                # the negation after the side word, not only before it
                "The {other} side must not be taken; reach the {target}",
            ),
            heldout=(
                "Never go {other} of the obstacle on the way to the {target}",
                "Get to the {target} without using the {other} side",
                "Avoid the {other} lane and head to the {target}",
                "The {other} side is not allowed, drive to the {target}",
            ),
        ),
        "korean": Family(
            train=(
                ROBOT_KOREAN_TEMPLATE,
                "장애물의 {side_ko}으로 돌아서 {target_ko}까지 가세요",
                "{side_ko} 길로 장애물을 지나 {target_ko}까지 이동하세요",
                "장애물을 {other_ko}에 두고 {target_ko}까지 가세요",
                "장애물이 {other_ko}에 보이게 하고 {target_ko}까지 가세요",
                "{other_ko}으로 가지 말고 {target_ko}까지 가세요",
                "{other_ko} 길로 가지 않고 {target_ko}까지 이동하세요",
                # Each cue (none, 말고/않고, 에 두고) beside each form of the side word (왼쪽으로,
                # 왼쪽 길로, 왼쪽 방향으로): with only the forms above, a held-out "왼쪽으로 ... 않고"
                # was read by the form, not the cue.
                "{side_ko}으로 가서 {target_ko}까지 이동하세요",
                "{side_ko} 방향으로 장애물을 지나 {target_ko}까지 가세요",
                "{other_ko}으로 가지 않고 {target_ko}까지 이동하세요",
                "{other_ko} 방향으로 가지 말고 {target_ko}까지 가세요",
                "장애물을 {other_ko}에 둔 채로 {target_ko}까지 이동하세요",
            ),
            heldout=(
                "상자 {side_ko}으로 우회해서 {target_ko}에 도착하세요",
                "상자가 {other_ko}에 오도록 지나가서 {target_ko}까지 가세요",
                "{other_ko}으로 돌지 않고 {target_ko}에 도착하세요",
            ),
        ),
        NO_SIDE: Family(
            train=("Reach the {target}", "Go to the {target}", "{target_ko} 쪽으로 이동하세요"),
            heldout=("Drive over to the {target}", "{target_ko}에 도착하세요"),
        ),
    },
    "basket": {
        "paraphrase": Family(
            train=(
                BASKET_TEMPLATE,
                "Go to the {side} gray basket",
                "Steer {side} to the gray basket",
                "Drive to the basket on the {side} side",
            ),
            heldout=(
                "Head for the gray basket at the {side}",
                "Approach the basket that sits on the {side}",
            ),
        ),
        "relational": Family(
            train=(
                "Go to the gray basket {side} of the box",
                "Reach the basket lying to the {side} of the obstacle",
                "Go to the basket with the other basket on its {other}",
            ),
            heldout=(
                "Drive to the basket that is on the {side} of the box",
                "Pick the gray basket; the other basket is on its {other}",
            ),
        ),
        "negated": Family(
            train=(
                "Don't go to the {other} basket; reach the gray one",
                "Go to the gray basket that is not on the {other}",
                "Never go to the {other} basket, go to the gray one",
                "Avoid the {other} gray basket and drive to the basket",
            ),
            heldout=(
                "Never stop at the {other} basket, choose the gray basket",
                "Avoid the {other} basket and reach the gray one",
            ),
        ),
        "korean": Family(
            train=(
                "{side_ko} 회색 바구니로 가세요",
                "{side_ko}에 있는 바구니까지 이동하세요",
                "상자 {side_ko}에 있는 바구니로 가세요",
                "{other_ko} 바구니 말고 다른 바구니로 가세요",
                "{other_ko}이 아닌 회색 바구니로 이동하세요",
            ),
            heldout=(
                "{side_ko}의 회색 바구니에 도착하세요",
                "{other_ko} 바구니가 아닌 바구니로 가세요",
            ),
        ),
        NO_SIDE: Family(
            train=("Go to a gray basket", "회색 바구니까지 가세요"),
            heldout=("Drive to either gray basket",),
        ),
    },
}

#: Backwards-compatible views of the cup task's templates.
TRAIN_TEMPLATES = tuple(t for f in FAMILIES for t in TEMPLATES["cup"][f].train)
HELDOUT_TEMPLATES = TEMPLATES["cup"]["paraphrase"].heldout

# -- reading a sentence ---------------------------------------------------------------------
_SWAP = {"left": "right", "right": "left", "왼쪽": "오른쪽", "오른쪽": "왼쪽", "왼편": "오른편", "오른편": "왼편"}
_SIDE_WORDS = {"left": "left", "right": "right", "왼쪽": "left", "오른쪽": "right", "왼편": "left", "오른편": "right"}
_SIDE_RE = re.compile(r"\b(left|right)\b|왼쪽|오른쪽|왼편|오른편", re.IGNORECASE)
_CLAUSE_RE = re.compile(r"[,;:.!?]")
# A clause that contains one of these says which side *not* to take.
_NEGATION_RE = re.compile(r"\b(don[’']t|do not|not|never|without|avoid)\b|말고|않|아닌|아니라|안 ", re.IGNORECASE)
# Cup task: the side word says where the *obstacle* stays relative to the robot ("keep the box on
# your right", "장애물을 오른쪽에 두고"), so the route is the opposite side.
_OBSTACLE_EN = r"\b(obstacle|obstacles|box|boxes)\b"
_RELATIONAL_EN = re.compile(_OBSTACLE_EN + r".*\byour\s+(left|right)\b", re.IGNORECASE)
_RELATIONAL_KO = re.compile(r"(장애물|상자)(을|를|이|가)\s*(왼쪽|오른쪽|왼편|오른편)에")
# Basket task: the side word places the *other* basket ("the basket with the other basket on its
# right"), so the target is the opposite side.
_OTHER_BASKET = re.compile(r"\b(other basket|other one|twin)\b.*\b(left|right)\b", re.IGNORECASE)
_BASKET_WORDS = re.compile(r"\bbaskets?\b|바구니", re.IGNORECASE)


def other_side(side: str) -> str:
    return {"left": "right", "right": "left"}[side]


def target_of(instruction: str) -> str:
    """The object an instruction names: ``basket`` when it names a basket, else ``cup``."""
    return "basket" if _BASKET_WORDS.search(instruction) else "cup"


def templates(target: str = "cup") -> dict[str, Family]:
    """The families of ``target``'s instructions (the cup's when ``target`` has none of its own)."""
    return TEMPLATES.get(target, TEMPLATES["cup"])


def format_instruction(template: str, side: str | None, target: str = "cup") -> str:
    """Fill a template. ``{other}`` is the opposite side (for "keep it on your right")."""
    if side is None:
        side = "left"  # a no-side template has no side placeholder; any value fills nothing
    elif side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    other = other_side(side)
    return template.format(side=side, other=other, side_ko=_KOREAN_SIDES[side], other_ko=_KOREAN_SIDES[other],
                           target=target, target_ko=_KOREAN_NOUNS.get(target, target))


def family_templates(family: str, target: str = "cup") -> tuple[str, ...]:
    """The templates an evaluation named ``family`` draws from.

    ``training``: every side-naming family's training part; a family name (``paraphrase``,
    ``relational``, ``negated``, ``korean``, ``no-side``): its held-out part.
    """
    fams = templates(target)
    if family == TRAINING:
        return tuple(t for f in FAMILIES for t in fams[f].train)
    if family not in fams:
        raise ValueError(f"unknown instruction family {family!r}; expected one of "
                         f"{[TRAINING, *FAMILIES, NO_SIDE]}")
    return fams[family].heldout


def check_family_weights(weights: Mapping[str, float] | None, where: str = "family_weights") -> None:
    """Raise ``ValueError`` naming ``where`` unless ``weights`` is ``None`` or valid draw weights.

    Valid: keys among :data:`FAMILIES`, values finite and ≥ 0, at least one positive; a family
    left out is never drawn.
    """
    if weights is None:
        return
    if not isinstance(weights, Mapping):
        raise ValueError(f"{where}: expected a mapping of family -> weight, got {weights!r}")
    unknown = sorted(set(weights) - set(FAMILIES))
    if unknown:
        raise ValueError(f"{where}: unknown instruction famil{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(map(repr, unknown))}; expected some of {list(FAMILIES)}")
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{where}.{name}: expected a finite weight >= 0, got {w!r}")
    if not any(w > 0 for w in weights.values()):
        raise ValueError(f"{where}: at least one family needs a positive weight, got {dict(weights)!r}")


def sample_instruction(side: str | None, rng: np.random.Generator, target: str = "cup", heldout: bool = False,
                       family: str | None = None, family_weights: Mapping[str, float] | None = None) -> str:
    """One instruction for ``side`` (``None``: a no-side one).

    ``family=None`` (or ``training``) draws like the training data: a family (uniformly, or in
    proportion to ``family_weights`` when given), then one of its training templates. Another
    ``family`` names an evaluation set (see :func:`family_templates`); ``heldout`` is the older
    spelling of ``family="paraphrase"``.
    """
    fams = templates(target)
    if side is None:
        pool = fams[NO_SIDE].heldout if (heldout or family == NO_SIDE) else fams[NO_SIDE].train
    elif family in (None, TRAINING) and not heldout:
        if family_weights is None:  # the uniform draw keeps its random stream (earlier datasets reproduce)
            name = FAMILIES[int(rng.integers(len(FAMILIES)))]
        else:
            check_family_weights(family_weights)
            p = np.array([float(family_weights.get(f, 0.0)) for f in FAMILIES])
            name = FAMILIES[int(rng.choice(len(FAMILIES), p=p / p.sum()))]
        pool = fams[name].train
    else:
        pool = family_templates(family or "paraphrase", target)
    return format_instruction(pool[int(rng.integers(len(pool)))], side, target)


def canonical_instruction(side: str, target: str = "cup") -> str:
    template = BASKET_TEMPLATE if target == "basket" else CANONICAL_TEMPLATE
    return format_instruction(template, side, target)


def robot_korean_instruction(side: str, target: str = "cup") -> str:
    """The real robot's original Korean instruction for ``side``."""
    return format_instruction(ROBOT_KOREAN_TEMPLATE, side, target)


def side_of(instruction: str, target: str | None = None) -> str | None:
    """The side the instruction asks for, or ``None`` when the text names no side.

    For the ``cup`` that is the side to pass the obstacle on; for the ``basket``, the side of
    the basket to reach. ``target`` defaults to :func:`target_of` the text. Each clause that
    names a side is read on its own: a negation in it ("don't pass on the left") or a relation
    that places the obstacle (cup: "keep the box on your right") or the other basket (basket:
    "with the other basket on its right") flips its side word; all clauses must agree.
    """
    target = target or target_of(instruction)
    sides = set()
    for clause in _CLAUSE_RE.split(instruction):
        words = {_SIDE_WORDS[m.group(0).lower()] for m in _SIDE_RE.finditer(clause)}
        if not words:
            continue
        if len(words) > 1:
            return None
        side = words.pop()
        flip = bool(_NEGATION_RE.search(clause))
        if target == "basket":
            flip ^= bool(_OTHER_BASKET.search(clause))
        else:
            flip ^= bool(_RELATIONAL_EN.search(clause) or _RELATIONAL_KO.search(clause))
        sides.add(other_side(side) if flip else side)
    return sides.pop() if len(sides) == 1 else None


def names_side(instruction: str) -> bool:
    """Whether the text contains a side word at all (English or Korean), whatever it means."""
    return _SIDE_RE.search(instruction) is not None


def resolve_no_side(instruction: str, route: str | None) -> str:
    """``instruction``, or, when ``route`` (``left`` / ``right``) is given and the text has no side
    word, its task's canonical instruction for that side: a no-side request under a convention."""
    if route is None or names_side(instruction):
        return instruction
    return canonical_instruction(route, target_of(instruction))


def mirror_instruction(instruction: str) -> str:
    """Swap left and right (English and Korean), preserving capitalisation.

    Swapping every side word mirrors every family: a negation or relation keeps its meaning
    and now applies to the other side.
    """

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = _SWAP[word.lower()]
        return new.capitalize() if word[:1].isupper() else new

    return _SIDE_RE.sub(swap, instruction)


def all_instructions(target: str | None = None) -> list[str]:
    """Every sentence the templates make (both sides, training and held-out), for a tokenizer's corpus."""
    targets = [target] if target else list(TEMPLATES)
    out = []
    for t in targets:
        for fam in templates(t).values():
            for template in (*fam.train, *fam.heldout):
                out += [format_instruction(template, side, t) for side in SIDES]
    return list(dict.fromkeys(out))
