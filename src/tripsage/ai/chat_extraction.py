"""Preference extraction by an OpenAI-compatible chat model (optional; the rules in preferences.py are the default).

The model is asked for JSON (`response_format: json_object`, temperature 0) in the same six categories; its answer
is validated (known categories, confidence clamped to [0.05, 0.95], one entry per category and value). A failed or
malformed answer raises ExtractionError: the function answers 503 and the event is retried, nothing is guessed.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tripsage.ai.preferences import CATEGORIES, Preference
from tripsage.exceptions import TripSageError

TIMEOUT = 60.0  # seconds per request
MAX_VALUE = 60  # characters of a preference's value

SYSTEM_PROMPT = (
    "You extract a traveller's stated travel preferences from one chat message. Answer only JSON: "
    '{"preferences": [{"category": <one of ' + ", ".join(CATEGORIES) + '>, "value": <short lowercase phrase>, '
    '"confidence": <0..1, how clearly the message states it>, "evidence": <the words of the message>}]}. '
    "Leave out anything negated, asked about or not about the traveller. An empty list when nothing is stated."
)


class ExtractionError(TripSageError):
    """The chat model could not extract preferences (it failed or answered something unusable)."""


class ChatPreferenceExtractor:
    """`POST {base_url}/chat/completions` with the message; the model's JSON answer as Preferences."""

    def __init__(self, *, api_key: str, base_url: str, model: str) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._session: aiohttp.ClientSession | None = None

    async def extract(self, text: str) -> list[Preference]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            async with self._session.post(f"{self.base_url}/chat/completions", json=body, headers=headers) as response:
                if response.status != 200:
                    raise ExtractionError(f"the chat API answered {response.status}: {(await response.text())[:300]}")
                payload = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ExtractionError(f"the chat API failed: {error}") from error
        try:
            content = payload["choices"][0]["message"]["content"]
            return parse_answer(json.loads(content))
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ExtractionError(f"the chat model's answer is not the JSON asked for: {error}") from error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def parse_answer(answer: Any) -> list[Preference]:
    """Validated preferences from the model's JSON; unknown categories and empty values are dropped."""
    items = answer["preferences"]
    if not isinstance(items, list):
        raise ValueError('"preferences" is not a list')
    found: dict[tuple[str, str], Preference] = {}
    for item in items:
        if not isinstance(item, dict) or item.get("category") not in CATEGORIES:
            continue
        value = str(item.get("value", "")).strip().lower()[:MAX_VALUE]
        if not value:
            continue
        confidence = min(0.95, max(0.05, float(item.get("confidence", 0.5))))
        preference = Preference(item["category"], value, round(confidence, 2), str(item.get("evidence", ""))[:200])
        key = (preference.category, preference.value)
        if key not in found or found[key].confidence < preference.confidence:
            found[key] = preference
    return sorted(found.values(), key=lambda p: (CATEGORIES.index(p.category), p.value))
