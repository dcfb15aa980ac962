"""The offline tokenizer of the ``tiny`` preset: a byte-level BPE trained in code.

No download is needed: the BPE is trained on the project's instruction sentences (every
family, both tasks, both languages), the prompt prefix and a list of common navigation words,
so it is identical on every machine. Being byte-level, it has no unknown token for any text —
Korean included, which a word-level vocabulary built from English templates mapped to
``<unk>``; the merges keep every templated instruction short (a Korean word is 2–3 tokens, not
its 6–9 UTF-8 bytes).

Special-token ids follow Kosmos-2 (``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3) because
Kosmos-2 derives positions from ``input_ids != pad_token_id`` with pad id 1.

A checkpoint saves its tokenizer, so checkpoints trained with the earlier word-level tokenizer
keep loading theirs.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mobile_vla.vocab.instructions import all_instructions

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<image>", "</image>", "<grounding>", "<action>"]
VOCAB_SIZE = 1024  # bytes (256) + merges; enough that every templated word is one or a few tokens
PROMPT_WORDS = "An image of a robot"

# Common words a user might say to a mobile robot, so that unseen phrasings merge into few tokens.
_COMMON_WORDS = """
a an the of to and or then on in at by via past around behind beside between through toward towards
into onto from with without your its it this that there here robot image go move drive head steer walk
turn pass reach arrive approach stop stay keep keeping use take get find follow avoid circle navigate
left right forward backward back ahead straight side sides lane path route way edge outside inside
box boxes obstacle obstacles cup basket baskets target goal table chair door wall gray grey red blue green
white black yellow small large big near far close medium first second two one please slowly quickly now
don't do not never other either
왼쪽 오른쪽 왼편 오른편 앞 뒤 가세요 가 주세요 이동하세요 도착하세요 멈추세요 돌아 돌아서 지나 피해서
컵 바구니 상자 장애물 회색 길 방향 쪽 말고 않고 아닌
""".split()


def _corpus() -> list[str]:
    # Each sentence after the prompt, as the processor tokenizes it: a word's merges then match
    # the form it has there (after a space), sentence-initial words included.
    return [f"{PROMPT_WORDS} {text}" for text in (*all_instructions(), " ".join(_COMMON_WORDS))]


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE (NFC + lower-cased) trained on the instruction templates."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=["<image>", "</image>", "<grounding>", "<action>"],
    )
