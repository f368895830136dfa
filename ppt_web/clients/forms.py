from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


def _int_or_none(value):
    """A chosen id, or None; anything that is not a plausible id counts as no choice."""
    if value in (None, "", "None"):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


class ClientForm(FlaskForm):
    # Required when registering (the service says so); on edit, empty keeps the number unseen.
    national_id = StringField(_l("National identity number"), validators=[Optional(), Length(max=20)],
                              render_kw={"inputmode": "numeric", "autocomplete": "off"})
    given_name = StringField(_l("Given name"), validators=[DataRequired(), Length(max=120)])
    family_name = StringField(_l("Family name"), validators=[DataRequired(), Length(max=120)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=100)])
    organisation_id = SelectField(_l("School or kindergarten"), coerce=_int_or_none, validate_choice=False)
    handler_id = SelectField(_l("Responsible case handler"), coerce=_int_or_none, validate_choice=False)


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    org_number = StringField(_l("Organisation number"), validators=[Optional(), Length(max=20)],
                             render_kw={"inputmode": "numeric"})
    kind = SelectField(_l("Kind"), validate_choice=False)
    parent_id = SelectField(_l("Part of"), coerce=_int_or_none, validate_choice=False)
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
