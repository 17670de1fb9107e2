"""Units of the functions: signature verification, SMTP_URL parsing, templates, preference extraction."""

from __future__ import annotations

import time

import pytest

from tripsage import standard_webhooks
from tripsage.ai import preferences
from tripsage.ai.embeddings import EmbeddingError, Vectors, to_pgvector
from tripsage.exceptions import ConfigurationError
from tripsage.functions import auth, templates
from tripsage.functions.email import SmtpConfig, build_message
from tripsage.functions.errors import Forbidden, Unauthorized
from tripsage.jwt import api_key, user_token

SECRET = "unit-tests-jwt-secret-0123456789-abcdefghijkl"


def signed(body: bytes, secret: str, *, at: int | None = None, message_id: str = "msg_1") -> dict[str, str]:
    return standard_webhooks.headers(message_id, at or int(time.time()), body, [standard_webhooks.secret_key(secret)])


def test_signature_accepts_any_active_secret_and_refuses_the_rest() -> None:
    old, new = standard_webhooks.generate_secret(), standard_webhooks.generate_secret()
    body = b'{"type": "x", "data": {}}'
    assert auth.verify_signature(signed(body, old), body, [new, old]).webhook_id == "msg_1"
    with pytest.raises(Unauthorized, match="does not match"):
        auth.verify_signature(signed(body, old), body, [new])
    with pytest.raises(Unauthorized, match="does not match"):
        auth.verify_signature(signed(body, new), body + b" ", [new])
    with pytest.raises(Unauthorized) as error:
        auth.verify_signature(signed(body, new, at=int(time.time()) - 301), body, [new])
    assert error.value.code == "webhook_timestamp_out_of_range"
    with pytest.raises(Unauthorized, match="needs webhook-id"):
        auth.verify_signature({"webhook-id": "msg_1"}, body, [new])
    with pytest.raises(Unauthorized, match="no webhook secret"):
        auth.verify_signature(signed(body, new), body, [])


def test_bearer_roles() -> None:
    assert auth.verify_bearer({"authorization": f"Bearer {api_key(SECRET, 'service_role')}"}, SECRET).kind == "service"
    user = auth.verify_bearer({"authorization": f"Bearer {user_token(SECRET, 'u-1')}"}, SECRET)
    assert (user.kind, user.user_id) == ("user", "u-1")
    with pytest.raises(Forbidden):
        auth.verify_bearer({"authorization": f"Bearer {api_key(SECRET, 'anon')}"}, SECRET)
    with pytest.raises(Unauthorized) as error:
        auth.verify_bearer({"authorization": f"Bearer {api_key(SECRET, 'service_role', lifetime=-10)}"}, SECRET)
    assert "expired" in error.value.message
    with pytest.raises(Unauthorized):
        auth.verify_bearer({}, SECRET)


def test_smtp_url() -> None:
    plain = SmtpConfig.parse("smtp://me%40x.org:p%3Ass@mail.example.org:2525?starttls=true")
    assert (plain.hostname, plain.port, plain.username, plain.password) == (
        "mail.example.org",
        2525,
        "me@x.org",
        "p:ss",
    )
    assert (plain.implicit_tls, plain.starttls) == (False, True)
    tls = SmtpConfig.parse("smtps://mail.example.org")
    assert (tls.port, tls.implicit_tls, tls.starttls) == (465, True, False)
    assert SmtpConfig.parse("smtp://localhost").port == 25
    for bad in ("http://mail", "smtp://", "mail.example.org:25"):
        with pytest.raises(ConfigurationError):
            SmtpConfig.parse(bad)


def test_templates_escape_html_but_not_text() -> None:
    item = templates.COLLABORATOR_REMOVED.render(
        "a@example.com",
        {"recipient_name": "Ann", "actor_name": "<b>Bob</b>", "trip_name": "R&R", "destination": "Rome"},
    )
    assert item.subject == "You were removed from R&R"
    assert "<b>Bob</b> removed you" in item.body_text
    assert "&lt;b&gt;Bob&lt;/b&gt;" in item.body_html and "R&amp;R" in item.body_html
    message = build_message("TripSage <t@example.org>", item, message_key="trip-events:msg_1:collaborator")
    assert message["Message-ID"] == "<trip-events.msg_1.collaborator@example.org>"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I prefer boutique hotels", {("accommodation", "boutique hotel")}),
        ("We're vegan and love street food", {("dietary", "vegan"), ("interests", "food")}),
        ("No museums, please. I hate hostels", set()),
        ("Our budget is $900 for a backpacking trip", {("budget", "budget"), ("travel_style", "backpacking")}),
        (
            "Looking for a 5-star resort on our honeymoon",
            {("budget", "luxury"), ("accommodation", "resort"), ("travel_style", "romantic")},
        ),
        ("A slow, relaxed week of hiking", {("pace", "relaxed"), ("interests", "hiking")}),
        ("What time is it in Tokyo?", set()),
    ],
)
def test_preference_extraction(text: str, expected: set[tuple[str, str]]) -> None:
    assert {(p.category, p.value) for p in preferences.extract(text)} == expected


def test_confidence_follows_wording() -> None:
    (strong,) = preferences.extract("I always need a vegetarian menu")
    (plain,) = preferences.extract("vegetarian menu")
    (hedged,) = preferences.extract("maybe vegetarian")
    assert strong.confidence > plain.confidence > hedged.confidence
    assert all(0 < p.confidence <= 1 for p in (strong, plain, hedged))
    assert strong.describe() == "User prefers vegetarian (dietary)"


def test_pgvector_text() -> None:
    assert to_pgvector([0.5, -1, 2e-08]) == "[0.5,-1.0,2e-08]"


def test_vectors_batch() -> None:
    vectors = Vectors.from_rows([[0.5, -1.0], [2.0, 0.25], [0.0, 1.5]], 2)
    assert len(vectors) == 3 and vectors.dimensions == 2
    assert vectors[0] == [0.5, -1.0] and vectors[-1] == [0.0, 1.5]
    assert list(vectors) == [[0.5, -1.0], [2.0, 0.25], [0.0, 1.5]]
    with pytest.raises(IndexError):
        vectors[3]
    assert len(Vectors.from_rows([], 384)) == 0
    with pytest.raises(EmbeddingError, match="expected vectors of 2 dimensions, got sizes \\[1, 2\\]"):
        Vectors.from_rows([[1.0, 2.0], [3.0]], 2)


def test_chat_model_answer_is_validated() -> None:
    from tripsage.ai.chat_extraction import parse_answer

    found = parse_answer(
        {
            "preferences": [
                {"category": "dietary", "value": " Vegan ", "confidence": 3, "evidence": "vegan"},
                {"category": "dietary", "value": "vegan", "confidence": 0.4},
                {"category": "zodiac", "value": "leo", "confidence": 0.9},
                {"category": "pace", "value": "", "confidence": 0.9},
                "not an object",
            ]
        }
    )
    assert [(p.category, p.value, p.confidence) for p in found] == [("dietary", "vegan", 0.95)]
    with pytest.raises(KeyError):
        parse_answer({})
    with pytest.raises(ValueError):
        parse_answer({"preferences": "vegan"})


def test_dedupe_base_is_stable_within_a_call_and_differs_between_calls() -> None:
    from tripsage.functions.app import Call

    call = Call("trip-events", "trip.updated", {}, auth.Caller("service"))
    assert call.dedupe_base == call.dedupe_base and call.dedupe_base.startswith("once:")
    assert Call("trip-events", "trip.updated", {}, auth.Caller("service")).dedupe_base != call.dedupe_base
    assert Call("trip-events", "trip.updated", {}, auth.Caller("service"), "msg_1").dedupe_base == "msg_1"
