"""Forms for series, meetings, agenda items and attendance."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    URL,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from mdt.auth.models import Discipline
from mdt.forms import MultiCheckboxField, choices, enum_choices, valid_zone
from mdt.meetings.models import (
    DEFAULT_CORE_DISCIPLINES,
    DEFAULT_REMINDER_OFFSETS,
    ItemStatus,
    Presence,
    Response,
    Triage,
)

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _at_least_one(form, field) -> None:
    # Not DataRequired: its "required" flag would make every checkbox mandatory.
    if not field.data:
        raise ValidationError("Choose at least one core discipline.")


def parse_offsets(text: str | None) -> list[int]:
    """Parse "1440, 60" into minutes; raise ValueError on anything else."""
    parts = [p.strip() for p in (text or "").replace(";", ",").split(",") if p.strip()]
    values = [int(p) for p in parts]
    if any(v <= 0 for v in values):
        raise ValueError("offsets must be positive")
    return values


def _valid_offsets(form, field) -> None:
    try:
        parse_offsets(field.data)
    except ValueError as exc:
        raise ValidationError("Whole minutes before the start, separated by commas, "
                              "e.g. 1440, 60.") from exc


class SeriesForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)],
                       description='For example "Bone metastasis MDT".')
    weekday = SelectField("Weekday", choices=choices((str(i), d) for i, d in enumerate(WEEKDAYS)))
    start_time = TimeField("Start time (local)", validators=[InputRequired()])
    time_zone = StringField("Time zone", validators=[DataRequired(), Length(max=64), valid_zone],
                            description="IANA name, e.g. Asia/Shanghai or Europe/London. "
                                        "The local start time is kept across daylight-saving "
                                        "changes.")
    duration_minutes = IntegerField("Duration (minutes)", default=90,
                                    validators=[InputRequired(), NumberRange(min=1, max=24 * 60)])
    location = StringField("Place", validators=[Optional(), Length(max=300)])
    video_url = StringField("Video link", validators=[Optional(), Length(max=500),
                                                      URL(message="Enter a full link (https://…).")])
    default_chair_id = SelectField("Default chair")
    core_disciplines = MultiCheckboxField(
        "Core disciplines (all must be present for quorum)", choices=enum_choices(Discipline),
        default=list(DEFAULT_CORE_DISCIPLINES),
        validators=[_at_least_one])
    cutoff_hours = IntegerField("Case submission cutoff (hours before the start)", default=24,
                                validators=[InputRequired(), NumberRange(min=0, max=24 * 14)])
    reminder_offsets = StringField(
        "Reminders (minutes before the start)",
        default=", ".join(str(m) for m in DEFAULT_REMINDER_OFFSETS),
        validators=[Optional(), _valid_offsets], description="Comma-separated, e.g. 1440, 60.")


class MeetingForm(FlaskForm):
    version = HiddenField()
    day = DateField("Date (local)", validators=[InputRequired()])
    start_time = TimeField("Start time (local)", validators=[InputRequired()])
    duration_minutes = IntegerField("Duration (minutes)",
                                    validators=[InputRequired(), NumberRange(min=1, max=24 * 60)])
    location = StringField("Place", validators=[Optional(), Length(max=300)])
    video_url = StringField("Video link", validators=[Optional(), Length(max=500),
                                                      URL(message="Enter a full link (https://…).")])
    chair_id = SelectField("Chair")


class CorrectionForm(MeetingForm):
    """The meeting's fields as they should have been recorded, and why (signed meetings)."""

    reason = TextAreaField("Why the record is corrected",
                           validators=[DataRequired(message="Say why the record is corrected."),
                                       Length(max=2000)],
                           description="Kept with the correction and shown beside the "
                                       "decisions signed at this meeting.")


class CancelForm(FlaskForm):
    version = HiddenField()
    reason = TextAreaField("Reason for cancelling", validators=[DataRequired(message="Required.")])


class AddItemForm(FlaskForm):
    case_id = SelectField("Case", validators=[DataRequired(message="Choose a case.")])
    minutes_allotted = IntegerField("Minutes allotted", default=10,
                                    validators=[InputRequired(), NumberRange(min=1, max=240)])
    presenter_id = SelectField("Presenter")


class AddToMeetingForm(FlaskForm):
    meeting_id = SelectField("Meeting", validators=[DataRequired(message="Choose a meeting.")])
    minutes_allotted = IntegerField("Minutes allotted", default=10,
                                    validators=[InputRequired(), NumberRange(min=1, max=240)])
    presenter_id = SelectField("Presenter")


class ItemForm(FlaskForm):
    version = HiddenField()
    minutes_allotted = IntegerField("Minutes allotted",
                                    validators=[InputRequired(), NumberRange(min=1, max=240)])
    presenter_id = SelectField("Presenter")


class TriageForm(FlaskForm):
    triage = SelectField("Triage", choices=enum_choices(Triage))


class StatusForm(FlaskForm):
    #: Pending is where an item starts; it is never chosen.
    status = SelectField("New status", choices=[
        choice for choice in enum_choices(ItemStatus) if choice.value != ItemStatus.PENDING])
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=2000)],
                           description="Required to defer.")


class InviteForm(FlaskForm):
    user_id = SelectField("Person")


class ResponseForm(FlaskForm):
    #: "Invited" is the state before an answer; it is never chosen.
    response = SelectField("Your answer", choices=choices(
        (r.value, r.value.capitalize()) for r in Response if r != Response.INVITED))


class PresenceForm(FlaskForm):
    presence = SelectField("Presence", choices=enum_choices(Presence))
