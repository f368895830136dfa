from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..auth.forms import LANGUAGES


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=LANGUAGES, default="nn")
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(min=10, max=512)],
                             render_kw={"autocomplete": "new-password"})
    roles = MultiCheckboxField(_l("Roles"), coerce=int)


class UserEditForm(FlaskForm):
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=200)])
    locale = SelectField(_l("Language"), choices=LANGUAGES)
    new_password = PasswordField(_l("New password (leave empty to keep)"),
                                 validators=[Optional(), Length(min=10, max=512)],
                                 render_kw={"autocomplete": "new-password"})


class GroupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    description = StringField(_l("Description"), validators=[Optional(), Length(max=400)])
