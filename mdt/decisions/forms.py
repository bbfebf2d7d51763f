"""Forms for proposals, opinions, the consensus and amendments."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from mdt.auth.models import User
from mdt.decisions.models import Intent, Modality, Outcome, Proposal, Stance
from mdt.forms import MultiCheckboxField, choices, enum_choices


def _int_or_none(value):
    return int(value) if value not in (None, "", "None") else None


class ProposalForm(FlaskForm):
    modality = SelectField("Modality", choices=enum_choices(Modality, blank="Choose a modality"),
                           validators=[DataRequired(message="Choose a modality.")])
    details = TextAreaField("Details", validators=[Optional(), Length(max=5000)],
                            description="E.g. target, dose and fractions, procedure, drug and "
                                        "schedule.")
    rationale = TextAreaField("Rationale", validators=[Optional(), Length(max=5000)])
    alternative_group = StringField(
        "Alternative group (optional)", validators=[Optional(), Length(max=40)],
        description="Proposals on this item sharing this label are alternatives: the team "
                    "picks one (e.g. \u201cBone-protective agent\u201d).")
    #: The version the form was opened at (optimistic locking).
    version = IntegerField(widget=HiddenInput(), validators=[Optional()])


class OpinionForm(FlaskForm):
    stance = RadioField("Your opinion", choices=enum_choices(Stance),
                        validators=[InputRequired(message="Choose support, object or abstain.")])
    comment = TextAreaField("Comment", validators=[Optional(), Length(max=5000)],
                            description="Required when you object: say why.")


class ActionForm(Form):
    description = StringField("What", validators=[Optional(), Length(max=500)])
    owner_id = SelectField("Owner", coerce=_int_or_none, validate_choice=True)
    due_on = DateField("Due date", validators=[Optional()])


class ConsensusForm(FlaskForm):
    outcome = RadioField("Outcome", choices=enum_choices(Outcome),
                         validators=[InputRequired(message="Choose the outcome.")])
    recommendation = TextAreaField("Recommendation", validators=[Optional(), Length(max=10000)],
                                   description="Required when a recommendation is agreed.")
    reason = TextAreaField("Reason (deferred or no consensus)",
                           validators=[Optional(), Length(max=5000)])
    adopted = MultiCheckboxField("Proposals adopted", coerce=int, validate_choice=True,
                                 description="At most one of each group of alternatives.")
    intent = SelectField("Intent", choices=enum_choices(Intent), default=Intent.NOT_KNOWN.value)
    responsible_clinician_id = SelectField("Responsible clinician", coerce=_int_or_none)
    actions = FieldList(FormField(ActionForm), label="Follow-up actions", min_entries=3,
                        max_entries=10)
    dissent = TextAreaField("Dissent", validators=[Optional(), Length(max=10000)],
                            description="Drafted from the objections; edit as needed.")
    non_quorate_reason = TextAreaField("Why sign although the meeting is not quorate",
                                       validators=[Optional(), Length(max=5000)])
    confirm = BooleanField(
        "I confirm this record is accurate; once signed it cannot be changed",
        validators=[DataRequired(message="Confirm the record before signing.")])

    def set_choices(self, proposals: list[Proposal], clinicians: list[User],
                    owners: list[User]) -> None:
        """Fill the choices that depend on the item and the people."""
        self.adopted.choices = choices(
            (p.id, p.modality.label + (f" \u2014 {p.alternative_group}" if p.alternative_group
                                       else "") + f" (by {p.author.name})")
            for p in proposals if not p.is_withdrawn)
        self.responsible_clinician_id.choices = choices(
            ((u.id, u.name) for u in clinicians), blank="Choose a clinician")
        for entry in self.actions:
            entry.form.owner_id.choices = choices(((u.id, u.name) for u in owners),
                                                  blank="No owner yet")


class AmendmentForm(FlaskForm):
    reason = TextAreaField("Why the record is corrected", validators=[
        DataRequired(message="Say why the record is corrected."), Length(max=5000)])
    correction = TextAreaField("The correction", validators=[
        DataRequired(message="Say what the correction is."), Length(max=10000)])
