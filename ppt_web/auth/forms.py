from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..formtools import FlaskForm


class SignInForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=512)],
                             render_kw={"autocomplete": "current-password"})


LANGUAGES = [("nn", "Nynorsk"), ("nb", "Bokmål"), ("en", "English")]


class ProfileForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=LANGUAGES)


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=512)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=10, max=512)],
                                 render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("Repeat the new password"),
                           validators=[DataRequired(), EqualTo("new_password", _l("The two new passwords differ."))],
                           render_kw={"autocomplete": "new-password"})
