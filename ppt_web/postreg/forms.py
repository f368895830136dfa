from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..formtools import DateField, FlaskForm, OnceForm, id_or_none
from ..models.domain import DEFAULT_LEGAL_BASIS


class TransferForm(FlaskForm):
    client_id = HiddenField()
    case_id = SelectField(_l("Case"), coerce=id_or_none, validate_choice=False)
    new_case_category = SelectField(_l("Or open a new case of category"), validate_choice=False)
    new_case_title = StringField(_l("Title of the new case"), validators=[Optional(), Length(max=300)])
    title = StringField(_l("Title"), validators=[Optional(), Length(max=300)])
    document_date = DateField(_l("Document date"), validators=[Optional()])
    received_on = DateField(_l("Received"), validators=[Optional()])
    sender_organisation_id = SelectField(_l("Sender from the organisation register"), coerce=id_or_none,
                                         validate_choice=False)
    sender_name = StringField(_l("Or sender's name"), validators=[Optional(), Length(max=200)])
    sender_address = TextAreaField(_l("Sender's address"), validators=[Optional(), Length(max=300)],
                                   render_kw={"rows": 2})
    sender_postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)],
                                     render_kw={"autocomplete": "off", "size": 6})
    sender_city = StringField(_l("Place"), validators=[Optional(), Length(max=100)])
    sender_country = StringField(_l("Country"), default="NO", validators=[Optional(), Length(max=60)],
                                 render_kw={"size": 3, "autocapitalize": "characters"})
    legal_basis = StringField(_l("Legal basis for exemption"), default=DEFAULT_LEGAL_BASIS,
                              validators=[Optional(), Length(max=200)])
    hold_back = BooleanField(_l("Hold back from access (the post waits, unfinalized, for the leader)"))
    after_downtime = BooleanField(_l("Registered after downtime (the received date above is the real date)"))
    storage_place = StringField(_l("Where the paper original is kept"), validators=[Optional(), Length(max=200)])


class SplitForm(FlaskForm):
    ranges = StringField(_l("Page ranges, one per document"), validators=[DataRequired(), Length(max=400)],
                         render_kw={"placeholder": "1-2, 3, 4-6"})


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Why is the item rejected?"), validators=[DataRequired(), Length(max=2000)])


class UploadForm(OnceForm):
    file = FileField(_l("PDF that came another way (e-mail)"), render_kw={"accept": "application/pdf,.pdf"})
