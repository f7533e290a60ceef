"""The shadow engine: a real engine asked the training engine's queries, to watch what the policy is taught.

Training against a simulated engine (ZeroSearch) can reward queries that a real engine would not answer.
With ``shadow_engine`` set, every step's queries are sent once more, in one batched call, to a real engine
*after* the rollout; its results only feed these figures, never the episodes, their ids or rewards. Per
step, over all searches of the step ("hit": a normalised gold answer occurs as whole words in the
documents, :func:`zerosearch.simulator.label.contains_answer`, the simulator evaluation's rule):

* ``shadow/train_hit_real_miss`` — the training engine hit, the shadow engine's top-k missed (with a
  simulated training engine: the simulator handed the policy an answer the real engine would not have);
* ``shadow/real_hit_train_miss`` — the other way round (e.g. a noisy draw where the real engine had it);
* ``shadow/agreement`` — both hit or both missed;
* ``shadow/train_hit`` / ``shadow/real_hit`` — each engine's hit rate; ``shadow/searches`` — searches per
  step. A step without searches logs only ``shadow/searches`` (0): shares of nothing are not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zerosearch.search.base import SearchEngine, SearchRequest
from zerosearch.simulator.label import contains_answer


def shadow_metrics(engine: SearchEngine, episodes: Sequence[Any], top_k: int,
                   prefix: str = "shadow") -> dict[str, float]:
    """Hit/miss agreement of ``engine`` with the documents recorded in ``episodes`` (read, never changed).

    ``episodes``: rollout :class:`~zerosearch.rollout.Episode` objects (``queries``, ``documents``,
    ``example.golden_answers``); ``top_k``: documents asked of the shadow engine per query (the rollout's).
    """
    searches = [(query, docs, ep.example.golden_answers)
                for ep in episodes for query, docs in zip(ep.queries, ep.documents, strict=True)]
    if not searches:
        return {f"{prefix}/searches": 0.0}
    results = engine.search([SearchRequest(query=query, top_k=top_k) for query, _, _ in searches])
    if len(results) != len(searches):
        raise ValueError(f"shadow engine {getattr(engine, 'name', engine)!r} answered {len(results)} of "
                         f"{len(searches)} requests")
    train_hits = [contains_answer(docs, golds) for _, docs, golds in searches]
    real_hits = [contains_answer([d.as_passage() for d in r.documents[:top_k]], golds)
                 for r, (_, _, golds) in zip(results, searches, strict=True)]
    n = len(searches)
    figures = {
        "searches": float(n),
        "train_hit": sum(train_hits) / n,
        "real_hit": sum(real_hits) / n,
        "train_hit_real_miss": sum(t and not r for t, r in zip(train_hits, real_hits, strict=True)) / n,
        "real_hit_train_miss": sum(r and not t for t, r in zip(train_hits, real_hits, strict=True)) / n,
        "agreement": sum(t == r for t, r in zip(train_hits, real_hits, strict=True)) / n,
    }
    return {f"{prefix}/{name}": value for name, value in figures.items()}
