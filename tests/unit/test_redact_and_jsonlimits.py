"""The two shared hardening helpers: `tripsage.redact` (one function for every stored, shown or logged error) and
`tripsage.jsonlimits` (JSON from outside, parsed with a depth limit)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from uvicorn.logging import AccessFormatter

from tripsage import jsonlimits, jwt, redact

JWT = jwt.api_key("a-secret-of-at-least-thirty-two-characters", "service_role")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("webhook URL 'https://u:PASS@host/h' refused", "webhook URL 'https://u:***@host/h' refused"),
        ("GET https://TOKEN@host/x", "GET https://***@host/x"),
        ("postgresql://postgres:pw@127.0.0.1:5432/db", "postgresql://postgres:***@127.0.0.1:5432/db"),
        (
            "/realtime/v1/websocket?apikey=abc&vsn=1.0.0",
            "/realtime/v1/websocket?apikey=***&vsn=1.0.0",
        ),
        (
            "/x?access_token=a&token=b&api_key=c&client_secret=d&password=e&sig=f&page=2",
            "/x?access_token=***&token=***&api_key=***&client_secret=***&password=***&sig=***&page=2",
        ),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        (f"a key {JWT} in the middle", "a key *** in the middle"),
        ("secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret whsec_***"),
        ("HTTP 500 from https://hooks.example/in?id=7", "HTTP 500 from https://hooks.example/in?id=7"),
    ],
)
def test_redact_masks_credentials_and_keeps_the_rest(text: str, expected: str) -> None:
    assert redact.redact(text) == expected
    assert redact.redact(expected) == expected  # idempotent


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.LogRedactor())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("cannot reach %s (%d tries)", "https://u:PASS@host/h?token=T0K", 3)
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            logger.exception("failed with apikey=%s", JWT)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "cannot reach https://u:***@host/h?token=*** (3 tries)" in text
    assert "PASS" not in text and "T0K" not in text and JWT not in text
    assert "ValueError: bad token ***" in text


def test_uvicorns_access_formatter_still_reads_the_redacted_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/health?apikey={JWT}&x=1", "1.1", 200),
        None,
    )
    assert redact.LogRedactor().filter(record)
    line = AccessFormatter(fmt="%(client_addr)s %(request_line)s %(status_code)s", use_colors=False).format(record)
    assert line == "127.0.0.1:5000 GET /health?apikey=***&x=1 HTTP/1.1 200 OK"


def test_json_depth_is_limited_before_parsing() -> None:
    assert jsonlimits.loads('{"a": [[["]]]]]"]]]}') == {"a": [[["]]]]]"]]]}  # brackets inside strings do not count
    at_limit = "[" * jsonlimits.MAX_DEPTH + "]" * jsonlimits.MAX_DEPTH
    assert jsonlimits.depth(at_limit) == jsonlimits.MAX_DEPTH
    json.dumps(jsonlimits.loads(at_limit))
    for too_deep in ("[" * (jsonlimits.MAX_DEPTH + 1), "[" * 100_000, '{"a":' * 65 + "1" + "}" * 65):
        with pytest.raises(jsonlimits.TooDeep) as refused:
            jsonlimits.loads(too_deep)
        assert refused.value.code == "json_too_deep"
    with pytest.raises(ValueError):
        jsonlimits.loads(b"\xff")
    assert jsonlimits.loads(b'[1, "\\"[[["]') == [1, '"[[[']
