"""Postal addresses as the archive and SvarUt want them: street lines, postal code, place, country.

Correspondents keep them as structured fields; rows from before migration 0012 hold one line
("Heimvegen 3, 6065 Ulsteinvik") in `address`, which is split when read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from .errors import Invalid
from .text import clean

ADDRESS = re.compile(r"^(?P<line>.*?)[,\s]+(?P<postal>\d{4})\s+(?P<city>\S.*)$")
NORWEGIAN_POSTAL_CODE = re.compile(r"\d{4}")
COUNTRY_CODE = re.compile(r"[A-Z]{2}")
# SvarUt carries three address lines; the archive takes any number, but a letter needs no more.
MAX_LINES = 3
MAX_STREET, MAX_POSTAL_CODE, MAX_CITY = 300, 10, 100  # the correspondent columns


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
        legacy = split_address(street) if not (city or "").strip() else None
        if legacy is not None:
            return Address((legacy[0],), legacy[1], legacy[2], country or "NO")
        lines = street_lines(street)  # an address abroad may have a place and no postal code
        return Address(lines, "", (city or "").strip(), country or "NO") if lines else None
    return Address(street_lines(street), postal_code.strip(), (city or "").strip(), country or "NO")


def of_correspondent(correspondent) -> Address | None:
    """A correspondent's address: its own fields, else its organisation's one-line address."""
    found = structured(correspondent.address, correspondent.postal_code or "", correspondent.city or "",
                       correspondent.country or "NO")
    if found is None and correspondent.organisation is not None:
        found = structured(correspondent.organisation.address, "", "")
    return found


def _one_line(text: str | None) -> str:
    return " ".join(clean(text or "").split())


def checked(street: str | None, postal_code: str | None, city: str | None, country: str | None = "NO",
            prefix: str = "") -> Address | None:
    """An address typed into a form (or brought by an intake), tidied and checked; None when empty.

    A Norwegian postal code has 4 digits and goes with its place; other countries' codes are free
    text. A street typed the old way ("Heimvegen 3, 6065 Ulsteinvik") with no postal code is split.
    Lines beyond MAX_LINES are joined into the last one rather than dropped. A bad field is refused
    as Invalid naming `prefix` + address | postal_code | city | country."""
    code = _one_line(country).upper() or "NO"
    if not COUNTRY_CODE.fullmatch(code):
        raise Invalid(_l("Give the country as its two-letter code (NO, SE, DK ...)."), field=f"{prefix}country")
    lines = [line for line in (_one_line(part) for part in clean(street or "").splitlines()) if line]
    postal, place = _one_line(postal_code), _one_line(city)
    if code == "NO" and not postal and not place and len(lines) == 1:
        legacy = split_address(lines[0])
        if legacy is not None:
            lines, postal, place = [legacy[0]], legacy[1], legacy[2]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES - 1], ", ".join(lines[MAX_LINES - 1:])]
    if len("\n".join(lines)) > MAX_STREET:
        raise Invalid(_l("At most %(n)s characters.", n=MAX_STREET), field=f"{prefix}address")
    if code == "NO":
        postal = postal.replace(" ", "")
        if postal and not NORWEGIAN_POSTAL_CODE.fullmatch(postal):
            raise Invalid(_l("A Norwegian postal code has 4 digits."), field=f"{prefix}postal_code")
        if postal and not place:
            raise Invalid(_l("Give the place that goes with the postal code."), field=f"{prefix}city")
        if place and not postal:
            raise Invalid(_l("Give the postal code that goes with the place."), field=f"{prefix}postal_code")
    elif len(postal) > MAX_POSTAL_CODE:
        raise Invalid(_l("At most %(n)s characters.", n=MAX_POSTAL_CODE), field=f"{prefix}postal_code")
    if len(place) > MAX_CITY:
        raise Invalid(_l("At most %(n)s characters.", n=MAX_CITY), field=f"{prefix}city")
    if not (lines or postal or place):
        return None
    return Address(tuple(lines), postal, place, code)


def as_text(address: Address | None) -> str:
    """One line for pages and logs: the lines, postal code and place, then a foreign country's code."""
    if address is None:
        return ""
    return address.one_line + (f", {address.country}" if address.country != "NO" else "")
