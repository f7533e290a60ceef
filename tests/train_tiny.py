"""Helpers for the trainer tests: a word-level tokenizer, a tiny Llama, and a warm start so it answers.

A random 2-layer model never writes ``<answer>``, so every reward would be 0 and every advantage 0.
``warm_start`` runs a few dozen supervised steps on "<answer> gold </answer>" after a short prompt so
sampled episodes get a mix of right and wrong answers: real, non-zero policy gradients on CPU in seconds.
The tokenizer is word-level (tags are single tokens) so the whole model has ~70k parameters and the
tests stay fast on a loaded 2-core machine; the trainer itself is tokenizer-agnostic.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from zerosearch.data.types import QAExample
from zerosearch.protocol import render_prompt

TEMPLATE = "Question: {question}\n"
QUESTIONS = [
    QAExample("q0", "capital of france?", ("paris",)),
    QAExample("q1", "capital of italy?", ("rome",)),
    QAExample("q2", "capital of spain?", ("madrid",)),
    QAExample("q3", "capital of japan?", ("tokyo",)),
]
CORPUS = [
    {"id": "d0", "contents": "\"France\"\nParis is the capital of France."},
    {"id": "d1", "contents": "\"Italy\"\nRome is the capital of Italy."},
    {"id": "d2", "contents": "\"Spain\"\nMadrid is the capital of Spain."},
    {"id": "d3", "contents": "\"Japan\"\nTokyo is the capital of Japan."},
]


TAGS = ["<think>", "</think>", "<search>", "</search>", "<answer>", "</answer>", "<information>", "</information>"]
_PIECES = Regex(r"</?[a-z]+>|\w+|[^\w\s]")


def word_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer over the words of the tiny world (tags are single tokens).

    "abcdef" is in the vocabulary because transformers' StopStringCriteria probes the vocabulary by
    appending each token to that string.
    """
    text = " ".join([TEMPLATE] + [q.question + " " + q.golden_answers[0] for q in QUESTIONS]
                    + [d["contents"] for d in CORPUS] + ["Doc 1 2 3 : . , ? My previous action is invalid abcdef"])
    words = sorted({m for m in __import__("re").findall(r"\w+|[^\w\s<>/]", text)})
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<unk>", "<eos>", *TAGS, *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(_PIECES, behavior="isolated")]
    )
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def tiny_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """2 layers, hidden 64, 4 heads: about 70k parameters with the word-level vocabulary."""
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=128, vocab_size=vocab_size, max_position_embeddings=512,
                         tie_word_embeddings=False)
    return LlamaForCausalLM(config)


def save_tiny_llama(path: Path, tokenizer_source: str | Path, hidden_size: int = 64,
                    intermediate_size: int = 128) -> Path:
    """A 2-layer Llama with random weights and a real tokenizer (SmolLM2's, say: chat template, stop strings
    that tokenize), saved like any ``save_pretrained`` checkpoint."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=intermediate_size, vocab_size=len(tokenizer), max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def prompt_ids(tokenizer, question: str) -> list[int]:
    """Ids of the rollout prompt built from :data:`TEMPLATE` without a chat template (as the rollout does)."""
    text = render_prompt(question, tokenizer, TEMPLATE, use_chat_template=False)
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def warm_start(model, tokenizer, steps: int = 40, lr: float = 3e-3, seed: int = 0,
               target: str = "<answer> {answer} </answer>") -> list[float]:
    """Supervised steps on ``target`` (answer-only by default; ``{answer}``/``{question}`` are filled in per
    question); returns the loss curve."""
    torch.manual_seed(seed)
    rows = []
    for ex in QUESTIONS:
        p = prompt_ids(tokenizer, ex.question)
        text = target.format(answer=ex.golden_answers[0], question=ex.question.rstrip("?"))
        r = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        rows.append((p, r))
    width = max(len(p) + len(r) for p, r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, r) in enumerate(rows):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)
        attention[i, : len(p) + len(r)] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    curve = []
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(float(loss.detach()))
    return curve


def write_world(root: Path) -> dict[str, Path]:
    """Template, questions JSONL and corpus JSONL files under ``root``."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    (root / "template.txt").write_text(TEMPLATE, encoding="utf-8")
    with (root / "questions.jsonl").open("w", encoding="utf-8") as f:
        for ex in QUESTIONS:
            row = {"id": ex.id, "question": ex.question, "golden_answers": list(ex.golden_answers)}
            f.write(json.dumps(row) + "\n")
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc in CORPUS:
            f.write(json.dumps(doc) + "\n")
    return {"template": root / "template.txt", "questions": root / "questions.jsonl", "corpus": root / "corpus.jsonl"}


def warm_world(root: Path) -> dict:
    """The capital world in ``root``: files, the word tokenizer, a 20-step warm-started tiny policy, BM25."""
    from zerosearch.search.factory import BM25EngineConfig, build_engine

    files = write_world(root)
    tokenizer = word_tokenizer()
    model = tiny_model(len(tokenizer))
    warm_start(model, tokenizer, steps=20)
    engine = build_engine(BM25EngineConfig(corpus=files["corpus"], index_dir=root / "index", progress=False))
    return {"files": files, "tokenizer": tokenizer, "model": model, "engine": engine}
