from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..auth.forms import LANGUAGES
from ..formtools import FlaskForm


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=LANGUAGES, default="nn")
    archive_id = StringField(_l("Identity in the archive"), validators=[Optional(), Length(max=100)],
                             render_kw={"autocomplete": "off"})
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, max=512)],
                             render_kw={"autocomplete": "new-password"})
    roles = MultiCheckboxField(_l("Roles"), coerce=int)


class UserEditForm(FlaskForm):
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=LANGUAGES)
    archive_id = StringField(_l("Identity in the archive"), validators=[Optional(), Length(max=100)],
                             render_kw={"autocomplete": "off"})
    new_password = PasswordField(_l("New password (leave empty to keep)"),
                                 validators=[Optional(), Length(min=10, max=512)],
                                 render_kw={"autocomplete": "new-password"})


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    description = StringField(_l("Description"), validators=[Optional(), Length(max=400)])


class ArchiveSettingsForm(FlaskForm):
    administrativ_enhet = StringField(_l("Administrative unit in the archive"),
                                      validators=[Optional(), Length(max=200)])
    arkivdel = StringField(_l("Archive part (code)"), validators=[Optional(), Length(max=20)],
                           render_kw={"autocomplete": "off", "size": 12})
    fagsystem = StringField(_l("Name of this case system in the archive"), validators=[Optional(), Length(max=100)],
                            render_kw={"autocomplete": "off"})
    confirm_fagsystem = BooleanField(_l("I understand: the archive will not find this system's earlier folders "
                                        "and posts under the new name."))
