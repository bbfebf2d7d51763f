"""Forms to refer and edit a case, add and retract references, and search cases."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
    URLField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
)

from mdt.cases.models import ECOG_GRADES, MarkerStatus, ReferenceKind, Sex
from mdt.cases.services import CASE_FIELDS
from mdt.forms import choices, enum_choices

ECOG_CHOICES = choices(((str(grade), f"{grade} — {meaning}")
                        for grade, meaning in ECOG_GRADES.items()),
                       blank="Not recorded")


def _optional_int(value: Any) -> int | None:
    return int(value) if value not in (None, "", "None") else None


class CaseFieldsForm(FlaskForm):
    """The clinical fields shared by the referral and the edit forms."""

    primary_site = StringField("Primary site", default="Lung", validators=[Length(max=120)])
    histology = StringField("Histology", validators=[Optional(), Length(max=200)],
                            description="e.g. Adenocarcinoma")
    stage = StringField("Stage", validators=[Optional(), Length(max=60)], description="e.g. IVB")
    egfr_status = SelectField("EGFR", choices=enum_choices(MarkerStatus),
                              default=MarkerStatus.NOT_TESTED.value)
    egfr_variant = StringField("EGFR variant", validators=[Optional(), Length(max=100)],
                               description="Only when EGFR is positive, e.g. exon 19 deletion")
    alk_status = SelectField("ALK", choices=enum_choices(MarkerStatus),
                             default=MarkerStatus.NOT_TESTED.value)
    ros1_status = SelectField("ROS1", choices=enum_choices(MarkerStatus),
                              default=MarkerStatus.NOT_TESTED.value)
    kras_status = SelectField("KRAS", choices=enum_choices(MarkerStatus),
                              default=MarkerStatus.NOT_TESTED.value)
    kras_variant = StringField("KRAS variant", validators=[Optional(), Length(max=100)],
                               description="Only when KRAS is positive, e.g. G12C")
    pdl1_tps = IntegerField("PD-L1 tumour proportion score (%)",
                            validators=[Optional(),
                                        NumberRange(0, 100, "A percentage from 0 to 100.")],
                            description="Leave empty if not tested.")
    ecog = SelectField("ECOG performance status", choices=ECOG_CHOICES, coerce=_optional_int,
                       validators=[Optional()])
    systemic_therapy = StringField("Current systemic therapy",
                                   validators=[Optional(), Length(max=300)])
    therapy_line = IntegerField("Line of therapy",
                                validators=[Optional(),
                                            NumberRange(1, 99, "The line starts at 1.")])
    question = TextAreaField("Question for the MDT",
                             validators=[DataRequired("Say what you are asking the MDT.")])
    clinical_summary = TextAreaField("Clinical summary", validators=[Optional()])

    def case_values(self) -> dict[str, Any]:
        """Return the clinical fields as a dict for the services."""
        return {name: getattr(self, name).data for name in CASE_FIELDS}


class ReferralForm(CaseFieldsForm):
    """Refer a case: the patient by hospital number, then the case."""

    hospital_number = StringField("Hospital number",
                                  validators=[DataRequired("The hospital number is required."),
                                              Length(max=40)])
    patient_name = StringField("Patient's name", validators=[Optional(), Length(max=200)])
    date_of_birth = DateField("Date of birth", validators=[Optional()])
    sex = SelectField("Sex", choices=enum_choices(Sex, blank="—"), validators=[Optional()])
    #: Set once the referrer was shown the stored patient for this hospital number.
    confirmed_patient_id = HiddenField()
    referrer_id = SelectField("Referring clinician", coerce=_optional_int,
                              validators=[InputRequired("Choose the referring clinician.")])
    lookup = SubmitField("Look up hospital number")
    submit = SubmitField("Refer case")


class CaseEditForm(CaseFieldsForm):
    """Edit a case; ``version`` is the version the editor started from."""

    version = HiddenField()
    referrer_id = SelectField("Referring clinician", coerce=_optional_int,
                              validators=[InputRequired("Choose the referring clinician.")])


class ReferenceForm(FlaskForm):
    """An imaging study or pathology report to look at."""

    kind = SelectField("Type", choices=enum_choices(ReferenceKind))
    accession_number = StringField("Accession number",
                                   validators=[DataRequired("The accession number is required."),
                                               Length(max=64)])
    performed_on = DateField("Date", validators=[InputRequired("The date is required.")])
    description = StringField("Description",
                              validators=[DataRequired("Describe the study or report."),
                                          Length(max=500)],
                              description="e.g. MRI whole spine, CT-guided biopsy of T7")
    url = URLField("Link (optional)", validators=[Optional(), Length(max=500)],
                   description="A web address in the PACS or pathology system, http:// or https://")


class RetractForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Say why the reference is retracted."),
                                               Length(max=500)])


class CaseSearchForm(FlaskForm):
    """Search by hospital number; posted, so the number never appears in a URL."""

    hospital_number = StringField("Hospital number", validators=[DataRequired(), Length(max=40)])
