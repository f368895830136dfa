from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..formtools import OnceForm, id_or_none


class ClientForm(OnceForm):
    # Required when registering (the service says so); on edit, empty keeps the number unseen.
    national_id = StringField(_l("National identity number"), validators=[Optional(), Length(max=20)],
                              render_kw={"inputmode": "numeric", "autocomplete": "off"})
    given_name = StringField(_l("Given name"), validators=[DataRequired(), Length(max=120)])
    family_name = StringField(_l("Family name"), validators=[DataRequired(), Length(max=120)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=100)])
    organisation_id = SelectField(_l("School or kindergarten"), coerce=id_or_none, validate_choice=False)
    handler_id = SelectField(_l("Responsible case handler"), coerce=id_or_none, validate_choice=False)


class OrganisationForm(OnceForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    org_number = StringField(_l("Organisation number"), validators=[Optional(), Length(max=20)],
                             render_kw={"inputmode": "numeric"})
    kind = SelectField(_l("Kind"), validate_choice=False)
    parent_id = SelectField(_l("Part of"), coerce=id_or_none, validate_choice=False)
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
