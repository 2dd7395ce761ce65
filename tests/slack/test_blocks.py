"""Pure builders: escaping, Slack-to-plain text, masking."""

from __future__ import annotations

import pytest

from channels.slack.blocks import escape, mask, plain


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> now", "&lt;!channel&gt; now"),
        ("<!here>", "&lt;!here&gt;"),
        ("hi <@U0AAA>", "hi &lt;@U0AAA&gt;"),
        ("<https://evil.example|your bank>", "&lt;https://evil.example|your bank&gt;"),
        ("Tom & Jerry &amp;", "Tom &amp; Jerry &amp;amp;"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize(
    ("slack", "customer_sees"),
    [
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("see <https://docs.example/x|the docs>", "see the docs (https://docs.example/x)"),
        ("see <https://docs.example/x>", "see https://docs.example/x"),
        ("ask <@U0BBB>", "ask @U0BBB"),
    ],
)
def test_plain(slack: str, customer_sees: str) -> None:
    assert plain(slack) == customer_sees


def test_mask() -> None:
    assert mask("5511999991001") == "…1001"
    assert mask("123") == "…"
