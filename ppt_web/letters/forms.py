"""Forms of the template screens and the letterhead screen (the services check every value again)."""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..formtools import FlaskForm, new_form_token
from ..labels import POST_TYPE_LABELS
from ..models.letters import TEMPLATE_POST_TYPES
from .templates import KIND_LABELS


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=list(KIND_LABELS.items()))
    post_type = SelectField(_l("Makes a post of type"),
                            choices=[(t.value, POST_TYPE_LABELS[t.value]) for t in TEMPLATE_POST_TYPES])
    default_title = StringField(_l("Default title of the post"), validators=[Optional(), Length(max=300)])
    legal_basis = StringField(_l("Legal basis for exemption from public access"),
                              validators=[Optional(), Length(max=200)])
    show_national_id = BooleanField(_l("The template may show the client's full national id (only to users "
                                       "who may see it)"))
    body = TextAreaField(_l("Text"), render_kw={"data-rich-text": "", "rows": 24})
    # The version the form showed: a save on an older one is refused (someone saved meanwhile).
    version = HiddenField()


class NewTemplateForm(TemplateForm):
    form_token = HiddenField(default=new_form_token)


class LetterheadForm(FlaskForm):
    name = StringField(_l("Name of the service"), validators=[Optional(), Length(max=200)])
    address = TextAreaField(_l("Address"), validators=[Optional(), Length(max=500)], render_kw={"rows": 3})
    org_number = StringField(_l("Organisation number"), validators=[Optional(), Length(max=20)],
                             render_kw={"inputmode": "numeric", "autocomplete": "off", "size": 12})
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=200)])
    logo = FileField(_l("Logo (PNG or JPEG, at most 512 KB)"), render_kw={"accept": "image/png,image/jpeg"})
    remove_logo = BooleanField(_l("Remove the logo"))
