"""The offline tokenizer of the ``tiny`` preset: a word-level vocabulary built in code.

No download is needed: the vocabulary is the project's instruction templates plus a list of
common navigation words, so it is identical on every machine. Special-token ids follow
Kosmos-2 (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3) because Kosmos-2 derives positions
from ``input_ids != pad_token_id`` with pad id 1.
"""

from __future__ import annotations

import re

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from mobile_vla.vocab.instructions import HELDOUT_TEMPLATES, TRAIN_TEMPLATES

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<image>", "</image>", "<grounding>", "<action>"]

# Common words a user might say to a mobile robot, so that unseen phrasings are not all <unk>.
_COMMON_WORDS = """
a an the of to and or then on in at by via past around behind beside between through toward towards
into onto from with without your its it this that there here robot image go move drive head steer walk
turn pass reach arrive approach stop stay keep keeping use take get find follow avoid circle navigate
left right forward backward back ahead straight side sides lane path route way edge outside inside
box boxes obstacle obstacles cup basket target goal table chair door wall gray grey red blue green white
black yellow small large big near far close medium first second two one please slowly quickly now
""".split()


def _template_words() -> list[str]:
    words: list[str] = []
    for template in (*TRAIN_TEMPLATES, *HELDOUT_TEMPLATES):
        text = template.format(side="left", other="right", target="cup")
        words += re.findall(r"[a-z]+", text.lower())
    return words


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic word-level tokenizer (lower-cased, punctuation split off)."""
    vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in [*_template_words(), *_COMMON_WORDS, ",", ".", "!", "?"]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<image>", "</image>", "<grounding>", "<action>"],
    )
