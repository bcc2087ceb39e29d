"""Shortening a message to the longest prefix whose content fits a byte budget."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.sync.history import SHORTENED_MARKER, content_size, fitted

# Quotes, backslashes and control characters grow when JSON-escaped; emoji take four bytes.
TEXT = st.text(alphabet=st.sampled_from(["a", '"', "\\", "\n", "\x01", "é", "🙂", " "]))


@given(body=TEXT, budget=st.integers(min_value=200, max_value=2_000))
def test_the_fitted_content_is_the_longest_marked_prefix_within_the_budget(
    body: str, budget: int
) -> None:
    content = {"msgtype": "m.text", "body": body}

    result = fitted(content, budget)

    if content_size(content) <= budget:
        assert result == content
        return
    kept = result["body"].removesuffix(SHORTENED_MARKER)
    assert result["body"].endswith(SHORTENED_MARKER) and body.startswith(kept)
    assert content_size(result) <= budget
    one_more = {**content, "body": body[: len(kept) + 1] + SHORTENED_MARKER}
    assert content_size(one_more) > budget
