"""Rejection codes: the contract's list, in the contract's spelling."""

from enum import StrEnum


class RejectionCode(StrEnum):
    INVALID_COMMAND = "invalid_command"
    UNKNOWN_COMMAND = "unknown_command"
    COMMAND_ID_REUSED = "command_id_reused"
    INVALID_EMAIL = "invalid_email"
    INVALID_ROLE = "invalid_role"
    CONTRACTOR_DISABLED = "contractor_disabled"
    CONTRACTOR_EXPIRY_REQUIRED = "contractor_expiry_required"
    EXPIRY_NOT_ALLOWED = "expiry_not_allowed"
    EXPIRY_IN_PAST = "expiry_in_past"
    EXPIRY_TOO_FAR = "expiry_too_far"
    INVITATION_PENDING = "invitation_pending"
    ALREADY_MEMBER = "already_member"
    INVITATION_NOT_FOUND = "invitation_not_found"
    INVITATION_NOT_PENDING = "invitation_not_pending"
    INVALID_TOKEN = "invalid_token"
    INVITATION_LAPSED = "invitation_lapsed"
    INVITATION_REVOKED = "invitation_revoked"
    INVITATION_ALREADY_ACCEPTED = "invitation_already_accepted"
    EMAIL_MISMATCH = "email_mismatch"
    RESEND_RATE_LIMITED = "resend_rate_limited"
    BATCH_TOO_LARGE = "batch_too_large"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    NOT_A_CONTRACTOR = "not_a_contractor"
    NOT_DUE = "not_due"
    INVALID_SETTING = "invalid_setting"
    # Extensions (the contract allows new codes; these never replace one above).
    ACCOUNT_NOT_FOUND = "account_not_found"
    TEMP_PASSWORD_NOT_AVAILABLE = "temp_password_not_available"
