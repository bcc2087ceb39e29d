"""Shortening a line to the longest prefix whose event fits a byte budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.letta import LettaMessage
from app.sync.history import SHORTENED_MARKER, content_size, fitted, message_content

# Quotes, backslashes, `<` and control characters grow when escaped; emoji take four bytes.
TEXT = st.text(alphabet=st.sampled_from(["a", '"', "\\", "\n", "\x01", "é", "🙂", " ", "<"]))
ROLES = st.sampled_from(["user_message", "assistant_message"])


@given(text=TEXT, role=ROLES, budget=st.integers(min_value=500, max_value=2_000))
def test_the_fitted_event_holds_the_longest_marked_prefix_within_the_budget(
    text: str, role: str, budget: int
) -> None:
    message = LettaMessage("message-1", role, text)
    whole = message_content(message, "key")

    result, shortened = fitted(message, "key", budget)

    if content_size(whole) <= budget:
        assert result == whole and not shortened
        return
    assert shortened and content_size(result) <= budget
    kept = _kept_prefix(text, result, budget)
    one_more = message_content(message, "key", text[: len(kept) + 1] + SHORTENED_MARKER)
    assert content_size(one_more) > budget


def _kept_prefix(text: str, result: dict[str, object], budget: int) -> str:
    """The prefix of `text` whose shortened event is `result` (the body quotes a user line)."""
    for length in range(len(text), -1, -1):
        if result == message_content(
            LettaMessage("message-1", _role(result), text), "key", text[:length] + SHORTENED_MARKER
        ):
            return text[:length]
    raise AssertionError(f"no prefix of the text gives {result!r} within {budget}")


def _role(result: dict[str, object]) -> str:
    return "user_message" if result["ai.letta.role"] == "user" else "assistant_message"
