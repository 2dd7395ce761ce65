"""Private numbers masked where a customer's words enter the core (issue 12).

A customer who was just told not to send card numbers sends one anyway. The engine
masks what it receives before anything else happens to it, so the clear number is
never matched, stored in a transcript, shown on a ticket card, relayed to agents or
written to a log line:

- **payment card numbers**: 13 to 19 digits, written together or in groups separated
  by spaces, dots or dashes, starting with 2-6 (the card networks' ranges: Visa,
  Mastercard, Amex, Elo, Hipercard, Discover ...) and passing the Luhn check, become
  ``[cartão •••• 1111]`` / ``[card •••• 1111]`` (the last four digits, which receipts
  show too, so customer and agent can still tell cards apart);
- **CPF numbers**: 11 digits, ``123.456.789-09`` or ``12345678909``, with valid check
  digits (and not one digit repeated), become ``[CPF •••.•••.•••-09]``.

What is *not* masked: numbers after ``#`` or ``+`` (order numbers, international phone
numbers), numbers that fail the checks (most order, protocol and phone numbers: a
random number passes Luhn one time in ten, and CPF's check digits one time in a
hundred). An unformatted 11-digit number that happens to be a valid CPF is masked even
when it was meant as a phone number: privacy wins over convenience there.

Both are on by default; ``[engine] mask_card_numbers`` and ``mask_cpf`` turn them off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A run of 13-19 digits, in groups separated by one space, dot or dash; not glued to
#: other digits or letters, and not after "#" or "+" (order and phone numbers).
_CARD = re.compile(r"(?<![\w#+.-])(?:\d[ .-]?){12,18}\d(?![\w])")
_CPF = re.compile(r"(?<![\w#+.-])(\d{3})(\.?)(\d{3})\2(\d{3})-?(\d{2})(?![\w])")

CARD_LABEL = {"pt-BR": "cartão", "en": "card"}


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def cpf_valid(digits: str) -> bool:
    if len(digits) != 11 or len(set(digits)) == 1:
        return False
    numbers = [int(c) for c in digits]
    for length in (9, 10):
        total = sum(
            n * weight for n, weight in zip(numbers, range(length + 1, 1, -1), strict=False)
        )
        check = total * 10 % 11 % 10
        if numbers[length] != check:
            return False
    return True


@dataclass(frozen=True)
class Masking:
    """Which kinds of number to mask; :meth:`mask` does it."""

    cards: bool = True
    cpf: bool = True

    @property
    def enabled(self) -> bool:
        return self.cards or self.cpf

    def mask(self, text: str, locale: str) -> str:
        """``text`` with every card and CPF number replaced (see module doc)."""
        if self.cpf:
            text = _CPF.sub(_cpf_replacement, text)
        if self.cards:
            label = CARD_LABEL.get(locale, CARD_LABEL["en"])

            def card(found: re.Match[str]) -> str:
                # A run may carry a number written right after the card ("... 1111 12
                # 25" with the expiry): the longest leading groups that make a card win.
                raw = found.group(0)
                parts = re.split(r"([ .-])", raw)
                for end in range(len(parts), 0, -2):
                    digits = "".join(parts[:end:2])
                    if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
                        return f"[{label} •••• {digits[-4:]}]" + "".join(parts[end:])
                return raw

            text = _CARD.sub(card, text)
        return text


def _cpf_replacement(found: re.Match[str]) -> str:
    digits = "".join(found.group(i) for i in (1, 3, 4, 5))
    if not cpf_valid(digits):
        return found.group(0)
    return f"[CPF •••.•••.•••-{digits[-2:]}]"
