"""A word-level tokenizer for the toy world: one token per word, punctuation mark and protocol tag.

A subword tokenizer would spend 3-5 tokens on a made-up name; one token per word keeps episodes
around a hundred tokens, so a sub-million-parameter policy trains in minutes on CPU. The protocol
tags (``<search>``, ``</answer>``, …) are single *non-special* added tokens: the rollout decodes with
``skip_special_tokens=True`` and must still see them. ``<pad>``, ``<eos>`` and ``<unk>`` are special.
Decoding joins tokens with single spaces, so ``"<search> Kovani Tesu </search>"`` round-trips
exactly and protocol parsing (which strips spaces) works on the decoded text.

    tok = build_tokenizer(texts)        # every word in ``texts`` gets an id
    tok.save_pretrained("policy/")      # reload with AutoTokenizer.from_pretrained("policy/")

:func:`build_spaced_tokenizer` is the variant for a model whose output text is parsed (the toy simulator):
it decodes with the original spacing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from zerosearch import protocol

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
#: Marks "a space came before this word" in :func:`build_spaced_tokenizer` (SentencePiece's convention).
SPACE = "\u2581"
SPECIAL_TOKENS = (PAD, EOS, UNK)
PROTOCOL_TAGS = (
    protocol.THINK_OPEN,
    protocol.THINK_CLOSE,
    protocol.SEARCH_OPEN,
    protocol.SEARCH_CLOSE,
    protocol.ANSWER_OPEN,
    protocol.ANSWER_CLOSE,
    protocol.INFORMATION_OPEN,
    protocol.INFORMATION_CLOSE,
)
#: Text the rollout may inject or that tokenizer users will print, beyond the world's own text.
PROTOCOL_TEXTS = (
    protocol.INVALID_ACTION_MESSAGE,
    protocol.format_information([]),
    protocol.format_information(["(Title: x) y", "z"]),
    protocol.NEUTRALISED_LT,
    # transformers' StopStringCriteria decodes every token after the probe word "abcdef" and looks the
    # probe up in the result; an <unk> probe makes it fail, so the word is part of every toy vocabulary.
    "abcdef",
)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Split on whitespace, then every punctuation mark on its own."""
    return pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])


def words_of(texts: Iterable[str]) -> list[str]:
    """The tokenizer's words of ``texts`` in first-seen order (protocol tags excluded)."""
    pre = _pre_tokenizer()
    seen: dict[str, None] = {}
    tags = "|".join(PROTOCOL_TAGS)
    for text in texts:
        for part in _split_tags(text, tags):
            for word, _ in pre.pre_tokenize_str(part):
                seen.setdefault(word, None)
    return list(seen)


def split_words(text: str) -> list[str]:
    """The words a toy tokenizer splits ``text`` into (tags excluded), in order, repeats kept.

    Whitespace only separates words, so texts that differ only in spacing split (and encode) alike:

    >>> split_words("(Title: Kovani Tesu) born.") == split_words("( Title : Kovani Tesu ) born .")
    True
    """
    pre = _pre_tokenizer()
    return [word for part in _split_tags(text, "|".join(PROTOCOL_TAGS)) for word, _ in pre.pre_tokenize_str(part)]


def _split_tags(text: str, tags: str) -> list[str]:
    """``text`` with the protocol tags removed (they are added tokens, not vocabulary words)."""
    return re.split(tags, text)


def build_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is every word of ``texts`` plus tags and specials.

    Ids are assigned in a fixed order (specials, then words in first-seen order, then tags), so the
    same texts always give the same tokenizer. Words outside the vocabulary map to ``<unk>``.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in words_of([*PROTOCOL_TEXTS, *texts]):
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = _pre_tokenizer()
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in PROTOCOL_TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )


def _spaced_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """Split at spaces, keeping each as a ``▁`` prefix of the next word, then isolate punctuation."""
    return pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True),
        pre_tokenizers.Punctuation(behavior="isolated"),
    ])


def build_spaced_tokenizer(texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose decoding restores spacing (runs of whitespace become one space).

    :func:`build_tokenizer` decodes ``"Doc 2:"`` as ``"Doc 2 :"``; a model whose *output text* matters (the
    toy simulator, whose results are parsed and whose stop string ``"Doc k+1:"`` transformers must be able
    to spell from token strings) needs the spacing back. Each word comes in two forms, after a space
    (``▁word``) or not (``word``); a space before punctuation is its own ``▁`` token. No protocol tags are
    added: nothing here needs them as single tokens.

    >>> tok = build_spaced_tokenizer(["Doc 1: (Title: Kovani Tesu) born."])
    >>> tok.decode(tok("Doc 1: (Title: Kovani Tesu) born.")["input_ids"])
    'Doc 1: (Title: Kovani Tesu) born.'
    """
    normalizer = normalizers.Replace(Regex(r"\s+"), " ")
    pre = _spaced_pre_tokenizer()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for text in [*PROTOCOL_TEXTS, *texts]:
        for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(text)):
            bare = piece.removeprefix(SPACE)
            for form in (bare, SPACE + bare) if bare[:1].isalnum() else (piece,):
                vocab.setdefault(form, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizer
    core.pre_tokenizer = pre
    core.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left",
        clean_up_tokenization_spaces=False, model_max_length=1024,
    )


def unknown_words(tokenizer: PreTrainedTokenizerFast, text: str) -> list[str]:
    """Words of ``text`` the tokenizer maps to ``<unk>`` (empty when the vocabulary covers it)."""
    return [w for w in words_of([text]) if tokenizer.convert_tokens_to_ids(w) == tokenizer.unk_token_id]
