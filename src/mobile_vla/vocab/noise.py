"""Instruction noise: meaning-preserving word edits for training-time language augmentation.

The offline ``tiny`` model learns its text encoder from scratch on a few dozen templates, so a
word it never saw in training has an embedding nothing ever moved, and a held-out sentence full
of such words can read like a cue ("not", "your") it did see. Training on instructions with a
few filler words inserted, dropped or swapped teaches it that words outside the cues carry no
side. Every edit is checked with the rule-based reader: the noisy sentence must name the same
side (:func:`~mobile_vla.vocab.instructions.side_of`) and the same target
(:func:`~mobile_vla.vocab.instructions.target_of`), so cue words — side words, negations,
relations — are never removed, nor is the target noun.

The filler words are disjoint from every held-out template's words (:data:`FILLER_WORDS` is
filtered against them), so held-out sentences stay unseen: the evaluation measures whether
robustness to *filler* carries over to *new* wording.
"""

from __future__ import annotations

import re

import numpy as np

from mobile_vla.vocab.instructions import TEMPLATES, side_of, target_of

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_PLAIN_WORD = re.compile(r"^[A-Za-z\uac00-\ud7a3]+$")  # words with punctuation attached are kept as they are
_TARGET_WORD = re.compile(r"cup|basket|컵|바구니", re.IGNORECASE)  # target_of defaults to the cup: keep its noun

_EN_CANDIDATES = """
please now slowly carefully quickly gently just then robot first next safely straight ahead
small little red blue white table room floor okay hey kindly also again there here quietly soon
smoothly area move find reach toward past nearby whole bright dark tall short
""".split()
_KO_CANDIDATES = "천천히 조심해서 지금 먼저 로봇 빨리 그리고 곧장 부드럽게 안전하게 잠깐 바로 똑바로 조용히 계속".split()


def _heldout_words() -> set[str]:
    """Every word (lower-cased, punctuation stripped) of any task's held-out templates."""
    words = set()
    for families in TEMPLATES.values():
        for family in families.values():
            for template in family.heldout:
                words |= {w.strip(",;:.!?").lower() for w in template.split()}
    return words


def _is_filler(word: str, heldout: set[str]) -> bool:
    """Never in a held-out template (a Korean word also not inside one: particles attach to it),
    and not itself a side, negation, relation or target."""
    unseen = word.lower() not in heldout and not (_HANGUL.search(word) and any(word in h for h in heldout))
    cue_free = side_of(f"{word} left") == "left" and target_of(word) == "cup" and word not in ("your", "other")
    return unseen and cue_free


_HELDOUT = _heldout_words()
#: Filler words per script: never in a held-out template, never a cue.
FILLER_WORDS: dict[str, tuple[str, ...]] = {
    script: tuple(w for w in words if _is_filler(w, _HELDOUT))
    for script, words in (("en", _EN_CANDIDATES), ("ko", _KO_CANDIDATES))
}
OPERATIONS = ("insert", "drop", "replace")


def perturb_instruction(instruction: str, rng: np.random.Generator, max_edits: int = 3) -> str:
    """``instruction`` with 1..``max_edits`` filler edits that keep its side and target.

    An edit inserts a filler word, drops a word or replaces one with a filler; one that would
    change what the sentence asks (per ``side_of``/``target_of``) is not made. Korean sentences
    get Korean fillers.
    """
    fillers = FILLER_WORDS["ko" if _HANGUL.search(instruction) else "en"]
    side, target = side_of(instruction), target_of(instruction)
    words = instruction.split()
    for _ in range(int(rng.integers(1, max_edits + 1))):
        op = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
        i = int(rng.integers(len(words) + (op == "insert")))
        filler = fillers[int(rng.integers(len(fillers)))]
        if op == "insert":
            candidate = words[:i] + [filler] + words[i:]
        elif len(words) < 3 or not _PLAIN_WORD.match(words[i]) or _TARGET_WORD.search(words[i]):
            continue
        else:
            candidate = words[:i] + ([filler] if op == "replace" else []) + words[i + 1:]
        text = " ".join(candidate)
        if side_of(text) == side and target_of(text) == target:
            words = candidate
    return " ".join(words)

