"""Domain operations on patients and cases: refer, edit, references, lists and who may see them.

One module per use case; callers import the package
(``from mdt.cases import services as cases``). Every change writes an audit
entry in the same transaction; services take the acting user as ``actor``,
flush, and leave the commit to the caller.
"""
from mdt.cases.services.access import (
    REFERRER_ROLES,
    REFERRING_ROLES,
    can_be_referrer,
    can_choose_referrer,
    can_edit_case,
    can_read_all_cases,
    can_read_patient,
    can_refer,
    can_view_case,
    check_referrer,
    concerns_user_clause,
    get_case,
    get_editable_case,
    get_visible_case,
    referrer_candidates,
    visible_case_ids,
)
from mdt.cases.services.lookup import PatientLookup, look_up_patient
from mdt.cases.services.patients import (
    PatientInput,
    check_patient_matches,
    check_unseen_patient_matches,
    find_patient,
    mismatched_fields,
    normalise_hospital_number,
    resolve_patient,
    today,
)
from mdt.cases.services.reading import (
    CasePage,
    Check,
    Readiness,
    case_page,
    list_cases,
    readiness,
)
from mdt.cases.services.references import add_reference, retract_reference
from mdt.cases.services.referral import (
    CASE_FIELDS,
    clean_case_values,
    create_case,
    update_case,
)

__all__ = [
    "CASE_FIELDS", "REFERRER_ROLES", "REFERRING_ROLES", "CasePage", "Check", "PatientInput",
    "PatientLookup", "Readiness", "add_reference", "can_be_referrer", "can_choose_referrer",
    "can_edit_case", "can_read_all_cases", "can_read_patient", "can_refer", "can_view_case",
    "case_page", "check_patient_matches", "check_referrer", "check_unseen_patient_matches",
    "clean_case_values", "concerns_user_clause", "create_case", "find_patient", "get_case",
    "get_editable_case", "get_visible_case", "list_cases", "look_up_patient",
    "mismatched_fields", "normalise_hospital_number", "readiness", "referrer_candidates",
    "resolve_patient", "retract_reference", "today", "update_case", "visible_case_ids",
]
