"""Synthetic data (SPEC §10: flask generate-data): valid ids, realistic cases, through the services."""
from __future__ import annotations

from datetime import date

F1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
F2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
ORG_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _mod11(digits, weights) -> int | None:
    rest = sum(d * w for d, w in zip(digits, weights)) % 11
    check = 0 if rest == 0 else 11 - rest
    return None if check == 10 else check


def national_id(born: date, individual: int) -> str:
    """A checksum-valid fødselsnummer for a birth date; bumps the individual number until valid."""
    for step in range(1000):
        ind = (individual + step) % 1000
        if born.year >= 2000 and ind < 500:
            ind += 500
        if born.year < 2000 and ind >= 500:
            ind -= 500
        digits = [int(c) for c in f"{born:%d%m%y}{ind:03d}"]
        k1 = _mod11(digits, F1)
        if k1 is None:
            continue
        k2 = _mod11(digits + [k1], F2)
        if k2 is None:
            continue
        return "".join(map(str, digits + [k1, k2]))
    raise ValueError("no valid number for that date")


def org_number(base: int) -> str:
    """A checksum-valid 9-digit organisation number starting with 9 (as Norwegian ones do)."""
    for step in range(100):
        digits = [int(c) for c in f"9{(base + step) % 10**7:07d}"]
        check = _mod11(digits, ORG_WEIGHTS)
        if check is not None:
            return "".join(map(str, digits + [check]))
    raise ValueError("no valid organisation number")
