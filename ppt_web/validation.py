"""Checks of Norwegian identifiers and dates, with messages for the user."""
from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.no import fodselsnummer, orgnr

from .errors import Invalid
from .text import clean


def national_id(value: str, field: str = "national_id") -> str:
    """A fødselsnummer or D-number, 11 digits with valid check digits and birth date; spaces and hyphens
    (as it is often written: 040413-50364) are left out."""
    raw = "".join((value or "").split()).replace("-", "")
    if not raw:
        raise Invalid(_l("The national identity number is required."), field=field)
    if not raw.isdigit():
        raise Invalid(_l("A national identity number has digits only."), field=field)
    try:
        number = fodselsnummer.validate(raw)
        fodselsnummer.get_birth_date(number)
    except InvalidLength:
        raise Invalid(_l("A national identity number has 11 digits."), field=field) from None
    except InvalidChecksum:
        raise Invalid(_l("The check digits do not match: check the number again."), field=field) from None
    except (InvalidComponent, InvalidFormat, ValidationError):
        raise Invalid(_l("This is not a valid national identity number or D-number."), field=field) from None
    return number


def birth_date(number: str) -> date:
    return fodselsnummer.get_birth_date(number)


def org_number(value: str, field: str = "org_number") -> str:
    raw = "".join((value or "").split())
    if not raw.isdigit():
        raise Invalid(_l("An organisation number has 9 digits."), field=field)
    try:
        return orgnr.validate(raw)
    except InvalidLength:
        raise Invalid(_l("An organisation number has 9 digits."), field=field) from None
    except ValidationError:
        raise Invalid(_l("The check digit of the organisation number does not match."), field=field) from None


def not_in_future(value: date | None, field: str, today: date) -> date | None:
    if value is not None and value > today:
        raise Invalid(_l("The date cannot be in the future."), field=field)
    return value


def required_text(value: str | None, field: str, max_len: int = 300) -> str:
    text = " ".join(clean(value or "").split())  # a title of control characters only is no title
    if not text:
        raise Invalid(_l("This field is required."), field=field)
    if len(text) > max_len:
        raise Invalid(_l("At most %(n)s characters.", n=max_len), field=field)
    return text
