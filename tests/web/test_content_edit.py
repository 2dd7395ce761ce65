"""The studio's TOML edits (``channels.web.content_edit``) keep what the form does not
show: an entry's reviewed ``messages`` (issue 19) and the comment above them."""

from __future__ import annotations

from pathlib import Path

from channels.web.content_edit import save_entry
from kb.loader import load_kb

ENTRY = """[[entry]]
id = "delivery_time"
category = "delivery"
questions = ["qual o prazo de entrega?", "how long does delivery take?"]
# Reviewed customer messages, matched on meaning only
messages = [
  "oii bom dia! moro no interior de sp, qnto tempo demora pra chegar aqui?",
]
[entry.answers]
pt-BR = "De 1 a 3 dias úteis nas capitais."
en = "1 to 3 business days to state capitals."
"""


def test_saving_an_entry_from_the_form_keeps_its_messages(tmp_path: Path) -> None:
    fields = {
        "id": "delivery_time",
        "category": "delivery",
        "tier_hint": "",
        "flow": "",
        "tags": [],
        "questions": ["qual o prazo de entrega?", "quando chega?"],
        "answers": {"pt-BR": "De 1 a 5 dias úteis.", "en": "1 to 5 business days."},
        "titles": {"pt-BR": "", "en": ""},
    }
    text = save_entry(ENTRY, "kb/delivery.toml", "delivery_time", fields)
    assert "# Reviewed customer messages, matched on meaning only" in text
    path = tmp_path / "delivery.toml"
    path.write_text(text, encoding="utf-8")
    entry = load_kb([path]).entries[0]
    assert entry.questions == ("qual o prazo de entrega?", "quando chega?")
    assert entry.answer("pt-BR") == "De 1 a 5 dias úteis."
    assert entry.messages == (
        "oii bom dia! moro no interior de sp, qnto tempo demora pra chegar aqui?",
    )
