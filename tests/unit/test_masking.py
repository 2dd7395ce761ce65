"""Card and CPF masking (issue 12): tricky formats masked, other numbers left alone."""

from __future__ import annotations

import pytest

from bot.masking import Masking, cpf_valid, luhn_valid

MASK = Masking()

MASKED = [
    ("4111 1111 1111 1111", "[cartão •••• 1111]"),
    ("4111-1111-1111-1111", "[cartão •••• 1111]"),
    ("4111.1111.1111.1111.", "[cartão •••• 1111]."),
    ("4111111111111111", "[cartão •••• 1111]"),
    ("cartão:5500000000000004!", "cartão:[cartão •••• 0004]!"),
    ("amex 3782 822463 10005", "amex [cartão •••• 0005]"),  # 4-6-5 groups, 15 digits
    ("diners 3056 9309 0259 04", "diners [cartão •••• 5904]"),  # 14 digits
    ("4111 1111 1111 1111 12 25 cvv 123", "[cartão •••• 1111] 12 25 cvv 123"),  # expiry after
    ("visa 4222222222222", "visa [cartão •••• 2222]"),  # 13 digits
    ("19 digits 6011 0000 0000 0000 001", "19 digits [cartão •••• 0001]"),
    ("cpf 529.982.247-25", "cpf [CPF •••.•••.•••-25]"),
    ("cpf: 52998224725.", "cpf: [CPF •••.•••.•••-25]."),
    ("dois: 529.982.247-25 e 4111111111111111", "dois: [CPF •••.•••.•••-25] e [cartão •••• 1111]"),
]

NOT_MASKED = [
    "pedido #4111111111111111",  # after '#': an order number
    "pedido 1234567890123",  # 13 digits starting with 1: no card network
    "pedido 98765432",
    "+55 11 98765-4321",  # international phone
    "(11) 98765-4321",
    "ligue 0800 000 0000",
    "4111 1111 1111 1112",  # fails Luhn
    "cpf 111.111.111-11",  # one digit repeated
    "cpf 529.982.247-26",  # wrong check digit
    "protocolo 2024-000123-45",
    "A4111111111111111",  # glued to a letter: an id, not a card
]


@pytest.mark.parametrize(("text", "masked"), MASKED)
def test_masked(text: str, masked: str) -> None:
    assert MASK.mask(text, "pt-BR") == masked


@pytest.mark.parametrize("text", NOT_MASKED)
def test_not_masked(text: str) -> None:
    assert MASK.mask(text, "pt-BR") == text


def test_english_label() -> None:
    assert MASK.mask("my card 4111 1111 1111 1111", "en") == "my card [card •••• 1111]"


def test_each_kind_can_be_turned_off() -> None:
    text = "4111111111111111 / 529.982.247-25"
    assert Masking(cards=False).mask(text, "pt-BR") == "4111111111111111 / [CPF •••.•••.•••-25]"
    assert Masking(cpf=False).mask(text, "pt-BR") == "[cartão •••• 1111] / 529.982.247-25"
    assert not Masking(cards=False, cpf=False).enabled


def test_check_digits() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert cpf_valid("52998224725") and not cpf_valid("52998224726")
    assert not cpf_valid("00000000000")
