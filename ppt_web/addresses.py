"""Postal addresses as the archive and SvarUt want them: street lines, postal code, place, country.

Correspondents keep them as structured fields; rows from before migration 0012 hold one line
("Heimvegen 3, 6065 Ulsteinvik") in `address`, which is split when read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ADDRESS = re.compile(r"^(?P<line>.*?)[,\s]+(?P<postal>\d{4})\s+(?P<city>\S.*)$")


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...]
    postal_code: str
    city: str
    country: str = "NO"

    @property
    def one_line(self) -> str:
        place = " ".join(p for p in (self.postal_code, self.city) if p)
        return ", ".join([*self.lines, place] if place else list(self.lines))


def split_address(text: str) -> tuple[str, str, str] | None:
    """ "Skulevegen 1, 6065 Ulsteinvik" -> ("Skulevegen 1", "6065", "Ulsteinvik")."""
    match = ADDRESS.match(" ".join((text or "").split()))
    if not match or not match.group("line").strip(" ,"):
        return None
    return match.group("line").strip(" ,"), match.group("postal"), match.group("city").strip()


def street_lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def structured(street: str, postal_code: str, city: str, country: str | None = "NO") -> Address | None:
    """An address from structured fields; a legacy one-line street with no postal code is split."""
    if not (postal_code or "").strip():
        legacy = split_address(street)
        if legacy is not None:
            return Address((legacy[0],), legacy[1], legacy[2], country or "NO")
        lines = street_lines(street)
        return Address(lines, "", "", country or "NO") if lines else None
    return Address(street_lines(street), postal_code.strip(), (city or "").strip(), country or "NO")


def of_correspondent(correspondent) -> Address | None:
    """A correspondent's address: its own fields, else its organisation's one-line address."""
    found = structured(correspondent.address, correspondent.postal_code or "", correspondent.city or "",
                       correspondent.country or "NO")
    if found is None and correspondent.organisation is not None:
        found = structured(correspondent.organisation.address, "", "")
    return found
