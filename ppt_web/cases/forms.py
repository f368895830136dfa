from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, MultipleFileField
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..formtools import DateField, FlaskForm, OnceForm, SubForm, id_or_none
from ..models.domain import DEFAULT_LEGAL_BASIS


class CaseForm(OnceForm):
    kind = SelectField(_l("Kind of case"), validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=300)])
    client_id = SelectField(_l("Client"), coerce=id_or_none, validate_choice=False)
    organisation_id = SelectField(_l("Organisation"), coerce=id_or_none, validate_choice=False)
    handler_id = SelectField(_l("Responsible case handler"), coerce=id_or_none, validate_choice=False)
    access_group_id = SelectField(_l("Access group"), coerce=id_or_none, validate_choice=False)


class CorrespondentForm(SubForm):
    organisation_id = SelectField(_l("From the organisation register"), coerce=id_or_none, validate_choice=False)
    name = StringField(_l("Or name"), validators=[Optional(), Length(max=200)])
    address = TextAreaField(_l("Street address"), validators=[Optional(), Length(max=300)], render_kw={"rows": 2})
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)],
                              render_kw={"autocomplete": "off", "size": 6})
    city = StringField(_l("Place"), validators=[Optional(), Length(max=100)])
    country = StringField(_l("Country"), default="NO", validators=[Optional(), Length(max=60)],
                          render_kw={"size": 3, "autocapitalize": "characters"})
    national_id = StringField(_l("National id (a guardian, for digital post)"), validators=[Optional(), Length(max=14)],
                              render_kw={"autocomplete": "off", "inputmode": "numeric"})


class PostForm(OnceForm):
    post_type = SelectField(_l("Type"), validate_choice=False)
    title = StringField(_l("Title"), validators=[Optional(), Length(max=300)])
    document_date = DateField(_l("Document date"), validators=[Optional()])
    received_on = DateField(_l("Received"), validators=[Optional()])
    sent_on = DateField(_l("Sent"), validators=[Optional()])
    registered_after_downtime = BooleanField(_l("Registered after downtime (the date above is the real date)"))
    legal_basis = StringField(_l("Legal basis for exemption"), default=DEFAULT_LEGAL_BASIS,
                              validators=[Optional(), Length(max=200)])
    correspondents = FieldList(FormField(CorrespondentForm), min_entries=2, max_entries=5)
    main_document = FileField(_l("Main document (PDF)"), render_kw={"accept": "application/pdf,.pdf"})
    attachments = MultipleFileField(_l("Attachments (PDF)"), render_kw={"accept": "application/pdf,.pdf"})


class CorrectionForm(PostForm):
    reason = TextAreaField(_l("Reason for the correction"), validators=[DataRequired(), Length(max=1000)])
    version = HiddenField()  # posts.correction_version() of the post as the form shows it


class DeleteForm(FlaskForm):
    reason = TextAreaField(_l("Why is the post deleted?"), validators=[DataRequired(), Length(max=1000)])


class WriteOffForm(FlaskForm):
    method = SelectField(_l("Written off by"), validate_choice=False)
    reply_post_id = SelectField(_l("Outgoing reply"), coerce=id_or_none, validate_choice=False)


class ApprovalRequestForm(FlaskForm):
    approver_id = SelectField(_l("Approver"), coerce=id_or_none, validate_choice=False)
    comment = TextAreaField(_l("Comment to the approver (optional)"), validators=[Optional(), Length(max=2000)])


class ApprovalDecisionForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])
    sign = BooleanField(_l("Sign the document electronically"), default=True)


class CaseCorrectionForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=300)])
    reason = TextAreaField(_l("Reason for the correction"), validators=[DataRequired(), Length(max=1000)])
