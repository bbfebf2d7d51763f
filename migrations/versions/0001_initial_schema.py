"""Create the initial schema: people, cases, meetings, agendas, decisions, notifications, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

"""
import sqlalchemy as sa
from alembic import op

import mdt.db

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hospital_number', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('date_of_birth', sa.Date(), nullable=False),
    sa.Column('sex', sa.Enum('female', 'male', 'other', 'unknown', name='sex', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('hospital_number', name=op.f('uq_patients_hospital_number'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('discipline', sa.Enum('radiation_oncology', 'orthopaedics', 'interventional_radiology', 'medical_oncology', 'radiology', 'pathology', 'palliative_care', 'nursing', 'other', name='discipline', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=True),
    sa.Column('last_login_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_users_email_lower')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('referring_clinician_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'closed', name='case_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('primary_site', sa.String(length=120), nullable=False),
    sa.Column('histology', sa.String(length=200), nullable=True),
    sa.Column('stage', sa.String(length=60), nullable=True),
    sa.Column('egfr_status', sa.Enum('not_tested', 'pending', 'negative', 'positive', name='egfr_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('egfr_variant', sa.String(length=100), nullable=True),
    sa.Column('alk_status', sa.Enum('not_tested', 'pending', 'negative', 'positive', name='alk_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('ros1_status', sa.Enum('not_tested', 'pending', 'negative', 'positive', name='ros1_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('kras_status', sa.Enum('not_tested', 'pending', 'negative', 'positive', name='kras_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('kras_variant', sa.String(length=100), nullable=True),
    sa.Column('pdl1_tps', sa.Integer(), nullable=True),
    sa.Column('ecog', sa.Integer(), nullable=True),
    sa.Column('systemic_therapy', sa.String(length=300), nullable=True),
    sa.Column('therapy_line', sa.Integer(), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('clinical_summary', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ecog IS NULL OR (ecog BETWEEN 0 AND 4)', name=op.f('ck_cases_ecog_range')),
    sa.CheckConstraint('length(trim(question)) > 0', name=op.f('ck_cases_question_required')),
    sa.CheckConstraint('pdl1_tps IS NULL OR (pdl1_tps BETWEEN 0 AND 100)', name=op.f('ck_cases_pdl1_range')),
    sa.CheckConstraint('therapy_line IS NULL OR therapy_line >= 1', name=op.f('ck_cases_line_positive')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_cases_patient_id_patients'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['referring_clinician_id'], ['users.id'], name=op.f('fk_cases_referring_clinician_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_referring_clinician_id'), ['referring_clinician_id'], unique=False)

    op.create_table('meeting_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=True),
    sa.Column('video_url', sa.String(length=500), nullable=True),
    sa.Column('default_chair_id', sa.Integer(), nullable=True),
    sa.Column('core_disciplines', sa.JSON(), nullable=False),
    sa.Column('cutoff_hours', sa.Integer(), nullable=False),
    sa.Column('reminder_offsets_minutes', sa.JSON(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cutoff_hours >= 0', name=op.f('ck_meeting_series_cutoff_not_negative')),
    sa.CheckConstraint('duration_minutes > 0', name=op.f('ck_meeting_series_duration_positive')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_meeting_series_weekday_range')),
    sa.ForeignKeyConstraint(['default_chair_id'], ['users.id'], name=op.f('fk_meeting_series_default_chair_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_series'))
    )
    op.create_table('user_roles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('admin', 'coordinator', 'specialist', 'clinician', name='role', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_roles_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'role', name=op.f('pk_user_roles'))
    )
    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=True),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_entries_actor_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_audit_entries_case_id_cases'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_audit_entries_object', ['object_type', 'object_id'], unique=False)

    op.create_table('case_references',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('imaging', 'pathology', name='reference_kind', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('accession_number', sa.String(length=64), nullable=False),
    sa.Column('performed_on', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=True),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_references_case_id_cases'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_references'))
    )
    with op.batch_alter_table('case_references', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_references_case_id'), ['case_id'], unique=False)

    op.create_table('meetings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('occurrence_date', sa.Date(), nullable=False),
    sa.Column('starts_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('location', sa.String(length=300), nullable=True),
    sa.Column('video_url', sa.String(length=500), nullable=True),
    sa.Column('chair_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('scheduled', 'cancelled', name='meeting_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('duration_minutes > 0', name=op.f('ck_meetings_duration_positive')),
    sa.ForeignKeyConstraint(['chair_id'], ['users.id'], name=op.f('fk_meetings_chair_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['series_id'], ['meeting_series.id'], name=op.f('fk_meetings_series_id_meeting_series'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meetings')),
    sa.UniqueConstraint('series_id', 'occurrence_date', name=op.f('uq_meetings_series_id_occurrence_date'))
    )
    op.create_table('agenda_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('minutes_allotted', sa.Integer(), nullable=False),
    sa.Column('presenter_id', sa.Integer(), nullable=True),
    sa.Column('triage', sa.Enum('for_discussion', 'standard_of_care', name='triage', native_enum=False, create_constraint=True, length=40), nullable=True),
    sa.Column('status', sa.Enum('pending', 'discussed', 'deferred', 'withdrawn', name='item_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('is_late', sa.Boolean(), nullable=False),
    sa.Column('added_by_id', sa.Integer(), nullable=True),
    sa.Column('carried_from_id', sa.Integer(), nullable=True),
    sa.Column('carried_to_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status <> 'deferred' OR status_reason IS NOT NULL", name=op.f('ck_agenda_items_deferred_has_reason')),
    sa.CheckConstraint('minutes_allotted > 0', name=op.f('ck_agenda_items_minutes_positive')),
    sa.ForeignKeyConstraint(['added_by_id'], ['users.id'], name=op.f('fk_agenda_items_added_by_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['carried_from_id'], ['agenda_items.id'], name=op.f('fk_agenda_items_carried_from_id_agenda_items'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['carried_to_id'], ['agenda_items.id'], name=op.f('fk_agenda_items_carried_to_id_agenda_items'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_agenda_items_case_id_cases'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_agenda_items_meeting_id_meetings'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['presenter_id'], ['users.id'], name=op.f('fk_agenda_items_presenter_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_items')),
    sa.UniqueConstraint('meeting_id', 'case_id', name=op.f('uq_agenda_items_meeting_id_case_id'))
    )
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_items_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agenda_items_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('attendances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('response', sa.Enum('invited', 'accepted', 'declined', 'apologies', name='attendance_response', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('presence', sa.Enum('unknown', 'present', 'absent', name='attendance_presence', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_attendances_meeting_id_meetings'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_attendances_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendances')),
    sa.UniqueConstraint('meeting_id', 'user_id', name=op.f('uq_attendances_meeting_id_user_id'))
    )
    with op.batch_alter_table('attendances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendances_user_id'), ['user_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('invitation', 'meeting_reminder', 'agenda_closing', 'opinion_pending', 'consensus_signed', 'amendment', 'action_due', 'case_deferred', name='notification_kind', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('due_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'failed', 'cancelled', name='notification_status', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('send_email', sa.Boolean(), nullable=False),
    sa.Column('read_at', mdt.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_notifications_attempts_not_negative')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_notifications_case_id_cases'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_notifications_meeting_id_meetings'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_notifications_recipient_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_notifications_dedup_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_pending_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_recipient_id'), ['recipient_id'], unique=False)

    op.create_table('consensuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agenda_item_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('agreed', 'deferred', 'no_consensus', name='outcome', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('recommendation', sa.Text(), nullable=True),
    sa.Column('intent', sa.Enum('curative', 'palliative', 'not_known', name='intent', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('responsible_clinician_id', sa.Integer(), nullable=True),
    sa.Column('dissent', sa.Text(), nullable=True),
    sa.Column('attendees_snapshot', sa.JSON(), nullable=False),
    sa.Column('was_quorate', sa.Boolean(), nullable=False),
    sa.Column('non_quorate_reason', sa.Text(), nullable=True),
    sa.Column('signed_by_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome <> 'agreed' OR length(trim(coalesce(recommendation, ''))) > 0", name=op.f('ck_consensuses_agreed_has_recommendation')),
    sa.CheckConstraint("outcome = 'agreed' OR length(trim(coalesce(reason, ''))) > 0", name=op.f('ck_consensuses_not_agreed_has_reason')),
    sa.CheckConstraint("was_quorate OR length(trim(coalesce(non_quorate_reason, ''))) > 0", name=op.f('ck_consensuses_non_quorate_has_reason')),
    sa.ForeignKeyConstraint(['agenda_item_id'], ['agenda_items.id'], name=op.f('fk_consensuses_agenda_item_id_agenda_items'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['responsible_clinician_id'], ['users.id'], name=op.f('fk_consensuses_responsible_clinician_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['signed_by_id'], ['users.id'], name=op.f('fk_consensuses_signed_by_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consensuses')),
    sa.UniqueConstraint('agenda_item_id', name=op.f('uq_consensuses_agenda_item_id'))
    )
    op.create_table('proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agenda_item_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('modality', sa.Enum('sbrt', 'conventional_rt', 'cementoplasty', 'surgery', 'denosumab', 'zoledronic_acid', 'systemic_therapy', 'best_supportive_care', 'clinical_trial', 'further_investigation', 'other', name='modality', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('details', sa.Text(), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('alternative_group', sa.String(length=40), nullable=True),
    sa.Column('is_withdrawn', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agenda_item_id'], ['agenda_items.id'], name=op.f('fk_proposals_agenda_item_id_agenda_items'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_proposals_author_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proposals'))
    )
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proposals_agenda_item_id'), ['agenda_item_id'], unique=False)

    op.create_table('amendments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consensus_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('correction', sa.Text(), nullable=False),
    sa.CheckConstraint('length(trim(correction)) > 0', name=op.f('ck_amendments_correction_required')),
    sa.CheckConstraint('length(trim(reason)) > 0', name=op.f('ck_amendments_reason_required')),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_amendments_author_id_users'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['consensus_id'], ['consensuses.id'], name=op.f('fk_amendments_consensus_id_consensuses'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_amendments'))
    )
    with op.batch_alter_table('amendments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_amendments_consensus_id'), ['consensus_id'], unique=False)

    op.create_table('consensus_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('consensus_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['consensus_id'], ['consensuses.id'], name=op.f('fk_consensus_actions_consensus_id_consensuses'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_consensus_actions_owner_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consensus_actions'))
    )
    with op.batch_alter_table('consensus_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consensus_actions_consensus_id'), ['consensus_id'], unique=False)

    op.create_table('consensus_proposals',
    sa.Column('consensus_id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['consensus_id'], ['consensuses.id'], name=op.f('fk_consensus_proposals_consensus_id_consensuses'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_consensus_proposals_proposal_id_proposals'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('consensus_id', 'proposal_id', name=op.f('pk_consensus_proposals'))
    )
    op.create_table('opinions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('discipline', sa.Enum('radiation_oncology', 'orthopaedics', 'interventional_radiology', 'medical_oncology', 'radiology', 'pathology', 'palliative_care', 'nursing', 'other', name='opinion_discipline', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('stance', sa.Enum('support', 'object', 'abstain', name='stance', native_enum=False, create_constraint=True, length=40), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', mdt.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("stance <> 'object' OR length(trim(coalesce(comment, ''))) > 0", name=op.f('ck_opinions_objection_has_reason')),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], name=op.f('fk_opinions_proposal_id_proposals'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_opinions_user_id_users'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opinions')),
    sa.UniqueConstraint('proposal_id', 'user_id', name=op.f('uq_opinions_proposal_id_user_id'))
    )
    with op.batch_alter_table('opinions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opinions_proposal_id'), ['proposal_id'], unique=False)


def downgrade():
    with op.batch_alter_table('opinions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opinions_proposal_id'))

    op.drop_table('opinions')
    op.drop_table('consensus_proposals')
    with op.batch_alter_table('consensus_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consensus_actions_consensus_id'))

    op.drop_table('consensus_actions')
    with op.batch_alter_table('amendments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_amendments_consensus_id'))

    op.drop_table('amendments')
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proposals_agenda_item_id'))

    op.drop_table('proposals')
    op.drop_table('consensuses')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_recipient_id'))
        batch_op.drop_index('ix_notifications_pending_due')

    op.drop_table('notifications')
    with op.batch_alter_table('attendances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendances_user_id'))

    op.drop_table('attendances')
    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_items_meeting_id'))
        batch_op.drop_index(batch_op.f('ix_agenda_items_case_id'))

    op.drop_table('agenda_items')
    op.drop_table('meetings')
    with op.batch_alter_table('case_references', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_references_case_id'))

    op.drop_table('case_references')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_object')
        batch_op.drop_index(batch_op.f('ix_audit_entries_created_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_case_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_action'))

    op.drop_table('audit_entries')
    op.drop_table('user_roles')
    op.drop_table('meeting_series')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_referring_clinician_id'))
        batch_op.drop_index(batch_op.f('ix_cases_patient_id'))

    op.drop_table('cases')
    op.drop_table('users')
    op.drop_table('patients')
