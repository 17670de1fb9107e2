import pytest

from tripsage import jwt

SECRET = "a-test-secret-of-at-least-thirty-two-characters"


def test_api_keys_carry_role_and_expiry() -> None:
    claims = jwt.verify(SECRET, jwt.api_key(SECRET, "service_role"))
    assert claims["role"] == "service_role"
    assert claims["exp"] > claims["iat"]


def test_user_token_is_authenticated_with_sub() -> None:
    claims = jwt.verify(SECRET, jwt.user_token(SECRET, "8d7e2f4c-0000-4000-8000-000000000001"))
    assert claims["role"] == "authenticated"
    assert claims["sub"] == "8d7e2f4c-0000-4000-8000-000000000001"


def test_wrong_secret_and_expired_tokens_are_rejected() -> None:
    with pytest.raises(jwt.InvalidToken, match="not a valid JWT"):
        jwt.verify("another-secret-that-is-also-long-enough-000", jwt.api_key(SECRET, "anon"))
    with pytest.raises(jwt.InvalidToken, match="expired"):
        jwt.verify(SECRET, jwt.api_key(SECRET, "anon", lifetime=-10))
