"""Sign-in and user administration forms."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from mdt.auth.models import Discipline, Role
from mdt.auth.passwords import MIN_LENGTH
from mdt.forms import MultiCheckboxField, enum_choices, valid_zone


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Keep me signed in on this device")


class UserForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("E-mail", validators=[DataRequired(), Email(check_deliverability=False),
                                             Length(max=254)])
    discipline = SelectField("Discipline", choices=enum_choices(Discipline))
    roles = MultiCheckboxField("Roles", choices=enum_choices(Role),
                               validators=[DataRequired(message="Choose at least one role.")])
    time_zone = StringField("Time zone", validators=[Optional(), valid_zone],
                            description="For times in e-mails, e.g. Asia/Shanghai. "
                                        "Empty: the meeting's zone.")
    is_active = BooleanField("Active (may sign in)", default=True)
    password = PasswordField(
        "Password", validators=[
            Optional(), Length(min=MIN_LENGTH, message=f"At least {MIN_LENGTH} characters.")],
        description=f"At least {MIN_LENGTH} characters. Leave empty to keep the current one.",
    )
