"""Amounts typed in yuan on the pages become exact fen, or nothing: never a float, never an exponent."""

import pytest

from service.web.routes import fen_of


@pytest.mark.parametrize(("typed", "fen"), [
    ("12", 1_200), ("12.5", 1_250), ("12.34", 1_234), ("0.01", 1), ("0.29", 29), ("999999999.99", 99_999_999_999),
    ("1e3", None), ("inf", None), ("nan", None), ("-1", None), ("1.234", None), (" 1", None), ("１２", None), ("", None),
])
def test_yuan_to_fen(typed, fen):
    assert fen_of(typed) == fen
