"""The shadow engine: hit agreement figures on known episodes, and a shadow never changes the training run.

Real parts: BM25 (bm25s) over tiny JSONL corpora, real rollout episodes of a tiny Llama warm-started to
search (``train_tiny``), the real trainer and its metrics.jsonl / episodes.jsonl.
"""

from __future__ import annotations

import copy
import json

import pytest
from train_tiny import CORPUS, QUESTIONS, tiny_model, warm_start, word_tokenizer, write_world

from zerosearch.rollout import Episode
from zerosearch.search.factory import BM25EngineConfig, build_engine
from zerosearch.train.config import ConfigError, parse_config
from zerosearch.train.shadow import shadow_metrics
from zerosearch.train.trainer import Trainer

PARIS, ROME, MADRID = QUESTIONS[0], QUESTIONS[1], QUESTIONS[2]
FRANCE_DOC = "(Title: France) Paris is the capital of France."
SPAIN_DOC = "(Title: Spain) Madrid is the capital of Spain."


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The full four-passage corpus (training) and a shadow corpus without the France passage."""
    root = tmp_path_factory.mktemp("shadow-world")
    files = write_world(root)
    shadow_corpus = root / "shadow-corpus.jsonl"
    shadow_corpus.write_text("".join(json.dumps(d) + "\n" for d in CORPUS if d["id"] != "d0"), encoding="utf-8")
    shadow = BM25EngineConfig(corpus=shadow_corpus, index_dir=root / "shadow-index", progress=False)
    train = BM25EngineConfig(corpus=files["corpus"], index_dir=root / "index", progress=False)
    return {"files": files, "shadow_config": shadow, "shadow": build_engine(shadow), "train": build_engine(train)}


def _episode(example, queries: list[str], documents: list[list[str]]) -> Episode:
    return Episode(example=example, group=0, sample=0, prompt_ids=[1, 2], response_ids=[3, 4],
                   response_mask=[1, 1], queries=queries, documents=documents, reward=0.5)


class _Counting:
    """The shadow engine, counting its calls and requests (to show one batched call per step)."""

    def __init__(self, engine):
        self.engine, self.name, self.calls = engine, "counting", []

    def search(self, requests):
        self.calls.append(list(requests))
        return self.engine.search(requests)


def test_hit_agreement_on_known_searches(world):
    # 1 France: training hit, shadow (no France passage) miss; 2 Italy: training shows Spain (miss), shadow
    # hit; 3 Spain: both hit; 4 France again with the Spain passage: both miss. Episode 3 never searched.
    episodes = [
        _episode(PARIS, ["capital of france", "capital of france"], [[FRANCE_DOC], [SPAIN_DOC]]),
        _episode(ROME, ["capital of italy"], [[SPAIN_DOC]]),
        _episode(MADRID, ["capital of spain"], [[SPAIN_DOC]]),
        _episode(QUESTIONS[3], [], []),
    ]
    before = [ep.to_record(include_ids=True) for ep in episodes]
    engine = _Counting(world["shadow"])
    figures = shadow_metrics(engine, episodes, top_k=1)
    assert figures == {"shadow/searches": 4.0, "shadow/train_hit": 0.5, "shadow/real_hit": 0.5,
                       "shadow/train_hit_real_miss": 0.25, "shadow/real_hit_train_miss": 0.25,
                       "shadow/agreement": 0.5}
    assert len(engine.calls) == 1 and [r.query for r in engine.calls[0]] == [
        "capital of france", "capital of france", "capital of italy", "capital of spain"]
    assert all(r.top_k == 1 and r.golden_answers is None for r in engine.calls[0])
    assert [ep.to_record(include_ids=True) for ep in episodes] == before


def test_documents_of_the_shadow_engine_itself_agree_everywhere(world):
    from zerosearch.search.base import SearchRequest

    queries = ["capital of france", "capital of italy", "paris", "tokyo japan"]
    results = world["train"].search([SearchRequest(q, top_k=1) for q in queries])
    episodes = [_episode(ex, [q], [[d.as_passage() for d in r.documents]])
                for ex, q, r in zip(QUESTIONS, queries, results, strict=True)]
    figures = shadow_metrics(world["train"], episodes, top_k=1)
    assert figures["shadow/agreement"] == 1.0 and figures["shadow/train_hit"] == figures["shadow/real_hit"] == 0.75


def test_a_step_without_searches_reports_no_shares(world):
    engine = _Counting(world["shadow"])
    assert shadow_metrics(engine, [_episode(PARIS, [], [])], top_k=3) == {"shadow/searches": 0.0}
    assert engine.calls == []


def _config(world, out, shadow: dict | None) -> object:
    data = {
        "seed": 0, "total_steps": 2, "output_dir": str(out),
        "model": {"name_or_path": "tiny-test-model"},
        "algorithm": {"estimator": "grpo", "micro_batch_size": 8, "kl": {"coef": 0.0}},
        "optimizer": {"lr": 3e-3, "weight_decay": 0.0},
        "rollout": {"max_turns": 2, "max_new_tokens": 8, "n_samples": 4, "use_chat_template": False,
                    "top_k_documents": 1, "template_path": str(world["files"]["template"])},
        "engine": {"kind": "bm25", "corpus": str(world["files"]["corpus"])},
        "shadow_engine": shadow,
        "data": {"train": str(world["files"]["questions"]), "prompts_per_step": 2},
        "checkpoint": {"every": 0, "save_final": False},
        "logging": {"tensorboard": False, "progress": False, "episodes_every": 1, "plot": False},
    }
    return parse_config(data)


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_shadow_never_changes_the_run(world, tmp_path):
    tokenizer = word_tokenizer()
    model = tiny_model(len(tokenizer))
    warm_start(model, tokenizer, steps=30, target="<search> {question} </search>")
    shadow_cfg = world["shadow_config"].model_dump(mode="json")
    outputs = {}
    for name, shadow in (("plain", None), ("shadowed", _Counting(world["shadow"]))):
        config = _config(world, tmp_path / name, shadow_cfg if shadow else None)
        Trainer(config, model=copy.deepcopy(model), tokenizer=tokenizer, engine=world["train"],
                train_examples=QUESTIONS, shadow_engine=shadow).train()
        outputs[name] = (_lines(tmp_path / name / "metrics.jsonl"), _lines(tmp_path / name / "episodes.jsonl"))
    (plain_metrics, plain_eps), (shadow_metrics_, shadow_eps) = outputs["plain"], outputs["shadowed"]
    assert plain_eps == shadow_eps  # same queries, documents, texts, rewards at both steps
    assert sum(len(e["queries"]) for e in plain_eps) > 0, "the warm-started policy should search"
    for plain, shadowed in zip(plain_metrics, shadow_metrics_, strict=True):
        assert not any(k.startswith("shadow/") for k in plain)
        for key in ("rollout/reward", "rollout/searches", "actor/pg_loss", "actor/grad_norm"):
            assert plain[key] == shadowed[key], key
        searches = shadowed["shadow/searches"]
        assert searches == sum(len(e["queries"]) for e in shadow_eps if e["step"] == shadowed["step"])
        if searches:
            both = shadowed["shadow/agreement"] + shadowed["shadow/train_hit_real_miss"]
            assert both + shadowed["shadow/real_hit_train_miss"] == pytest.approx(1.0)


def test_bad_shadow_configs_are_refused(world, tmp_path):
    same = {"kind": "bm25", "corpus": str(world["files"]["corpus"])}
    with pytest.raises(ConfigError, match="shadow_engine is the training engine"):
        _config(world, tmp_path, same)
    simulated = {"kind": "simulated", "generator": {"model": "tiny"}}
    with pytest.raises(ConfigError, match=r"shadow_engine: Value error, must be a real engine"):
        _config(world, tmp_path, simulated)
    with pytest.raises(ConfigError, match=r"shadow_engine\.bm25\.corpus"):
        _config(world, tmp_path, {"kind": "bm25"})
    config = _config(world, tmp_path, world["shadow_config"].model_dump(mode="json"))
    with pytest.raises(ValueError, match="no shadow engine was passed"):
        Trainer(config, model=tiny_model(len(word_tokenizer())), tokenizer=word_tokenizer(), engine=world["train"],
                train_examples=QUESTIONS)
