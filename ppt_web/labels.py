"""Screen names for codes that are stored in English (permissions, log actions)."""
from flask_babel import lazy_gettext as _l

PERMISSION_LABELS = {
    "search_all": _l("Search every case and client"),
    "search_own": _l("Search own active and closed cases"),
    "register_case": _l("Register person, system and administration cases"),
    "assign_roles": _l("Give and take roles"),
    "change_handler": _l("Change a case's responsible handler"),
    "add_cohandler": _l("Add co-handlers to own case"),
    "manage_templates": _l("Register, edit and copy document templates"),
    "manage_groups": _l("Create access groups (teams)"),
    "journal": _l("Create and finalize journal posts"),
    "sysadmin_view": _l("Open system administration"),
    "sysadmin_edit": _l("Change system administration"),
    "sysadmin_edit_all": _l("Change all of system administration, including the role matrix"),
    "manage_orgs": _l("Add organisations and organisation structure"),
    "distribute_mail": _l("Distribute incoming mail (post registration)"),
    "activity_log": _l("Read the activity log"),
    "fix_misregistered": _l("Edit and delete misregistered documents that are not finalized"),
    "correct_metadata": _l("Correct metadata of finalized documents"),
    "statistics": _l("Statistics"),
    "esign": _l("Electronic signing"),
    "citizen_dialogue": _l("Citizen dialogue"),
    "send": _l("Create, finalize and send correspondence electronically"),
    "close_case": _l("Close cases"),
    "approve": _l("Approve expert assessments sent for approval"),
    "archive_log": _l("See the archive log"),
    "archive_retry": _l("Retry failed archive jobs"),
    "archive_delete": _l("Delete an archive job"),
}

ACTION_LABELS = {
    "sign_in": _l("Signed in"),
    "sign_in_failed": _l("Failed sign-in"),
    "sign_in_locked": _l("Sign-in refused (locked)"),
    "sign_in_client_locked": _l("Sign-in refused (too many attempts from this address)"),
    "password_changed": _l("Password changed"),
    "password_change_failed": _l("Password change failed"),
    "sign_in_refused": _l("Sign-in refused (deactivated)"),
    "sign_out": _l("Signed out"),
    "user_created": _l("User created"),
    "user_updated": _l("User changed"),
    "user_deactivated": _l("User deactivated"),
    "user_activated": _l("User reactivated"),
    "user_language_changed": _l("Language changed"),
    "role_granted": _l("Role given"),
    "role_revoked": _l("Role taken away"),
    "group_created": _l("Access group created"),
    "group_member_added": _l("Added to access group"),
    "group_member_removed": _l("Removed from access group"),
    "group_coordinator_set": _l("Team coordinator set"),
    "group_role_granted": _l("Role given to access group"),
    "group_role_revoked": _l("Role taken from access group"),
    "setting_changed": _l("Setting changed"),
    "archive_settings_changed": _l("Archive settings changed"),
    "role_permission_changed": _l("Role matrix changed"),
    "access_denied": _l("Access denied"),
    "client_created": _l("Client registered"),
    "client_updated": _l("Client changed"),
    "client_folder_opened": _l("Client folder opened"),
    "national_id_shown": _l("National id shown"),
    "organisation_created": _l("Organisation registered"),
    "organisation_updated": _l("Organisation changed"),
    "case_created": _l("Case registered"),
    "case_cohandler_added": _l("Co-handler added"),
    "case_cohandler_removed": _l("Co-handler removed"),
    "case_handler_changed": _l("Handler changed"),
    "case_closed": _l("Case closed"),
    "case_reopened": _l("Case reopened"),
    "case_metadata_corrected": _l("Case title corrected"),
    "post_created": _l("Journal post registered"),
    "post_updated": _l("Journal post changed"),
    "post_document_removed": _l("Document removed"),
    "post_deleted": _l("Journal post deleted"),
    "post_finalized": _l("Journal post finalized"),
    "post_metadata_corrected": _l("Metadata corrected"),
    "post_written_off": _l("Written off"),
    "post_hold_released": _l("Released from hold back"),
    "post_hold_kept": _l("Kept held back from access"),
    "post_opened": _l("Journal post opened"),
    "letter_created": _l("Letter made from a template"),
    "letter_saved": _l("Letter saved"),
    "letter_rendered": _l("Letter made into PDF"),
    "letter_previewed": _l("Letter previewed as PDF"),
    "document_opened": _l("Document opened"),
    "archive_job_retried": _l("Archive job retried"),
    "archive_job_deleted": _l("Archive job deleted"),
    "archive_job_restored": _l("Archive job restored"),
    "not_found": _l("Not found or not allowed"),
    "inbox_received": _l("Mail received in the inbox"),
    "inbox_refused": _l("Mail refused by the intake"),
    "inbox_claimed": _l("Inbox item taken"),
    "inbox_checked": _l("Checklist point ticked"),
    "inbox_unchecked": _l("Checklist point unticked"),
    "inbox_transferred": _l("Mail transferred to a client"),
    "inbox_split": _l("Mail split into documents"),
    "inbox_rejected": _l("Mail rejected"),
    "inbox_refusal_seen": _l("Refused mail dealt with"),
    "inbox_returned": _l("Mail back in the inbox (its post was deleted)"),
    "inbox_file_opened": _l("Mail in the inbox opened"),
    "paper_destroyed": _l("Paper original destroyed"),
    "post_sent_to_approval": _l("Sent to approval"),
    "post_approved": _l("Approved"),
    "post_returned": _l("Returned from approval"),
    "post_signed": _l("Signed electronically"),
    "post_dispatch_requested": _l("Dispatch started"),
    "post_dispatched": _l("Dispatched"),
    "dispatch_failed": _l("Dispatch failed"),
    "dispatch_retried": _l("Dispatch retried"),
    "dispatch_manual": _l("Dispatch handled manually at SvarUt"),
    "post_expedited": _l("Letter recorded as sent"),
    "svarinn_undecryptable": _l("Digital mail that cannot be decrypted"),
    "template_created": _l("Letter template created"),
    "template_changed": _l("Letter template changed"),
    "template_copied": _l("Letter template copied"),
    "template_retired": _l("Letter template retired"),
    "template_reinstated": _l("Letter template reinstated"),
    "letterhead_changed": _l("Letterhead changed"),
    "backup_restored": _l("Restored from a backup"),
    "statistics_exported": _l("Statistics exported (CSV)"),
}

OBJECT_LABELS = {
    "user": _l("User"),
    "role": _l("Role"),
    "access_group": _l("Access group"),
    "permission": _l("Permission"),
    "url": _l("Address"),
    "client": _l("Client"),
    "case": _l("Case"),
    "journal_post": _l("Journal post"),
    "document": _l("Document"),
    "organisation": _l("Organisation"),
    "archive_job": _l("Archive job"),
    "inbox_item": _l("Inbox item"),
    "paper_original": _l("Paper original"),
    "notification": _l("Notification"),
    "dispatch": _l("Dispatch"),
    "document_template": _l("Letter template"),
    "document_template_version": _l("Letter template version"),
    "svarinn_item": _l("Digital mail (SvarInn)"),
    "setting": _l("Setting"),
    "backup": _l("Backup"),
}

OUTCOME_LABELS = {
    "ok": _l("OK"),
    "failed": _l("Failed"),
    "refused": _l("Refused"),
    "denied": _l("Denied"),
}

CATEGORY_LABELS = {
    "expert_assessment": _l("Expert assessment"),
    "statement": _l("Statement"),
    "follow_up": _l("Follow-up case"),
    "referral": _l("Referral"),
    "other": _l("Other"),
}

KIND_LABELS = {
    "person": _l("Person case"),
    "system": _l("System case"),
    "administration": _l("Administration case"),
}

POST_TYPE_LABELS = {
    "I": _l("Incoming"),
    "U": _l("Outgoing"),
    "N": _l("Note"),
    "X": _l("Note without follow-up"),
}

POST_STATUS_LABELS = {
    "draft": _l("Draft"),
    "awaiting_approval": _l("Awaiting approval"),
    "approved": _l("Approved"),
    "finalized": _l("Finalized"),
    "dispatched": _l("Dispatched"),
}

CASE_STATUS_LABELS = {"open": _l("Open"), "closed": _l("Closed")}

ORG_KIND_LABELS = {
    "school": _l("School"),
    "kindergarten": _l("Kindergarten"),
    "municipal_unit": _l("Municipal unit"),
    "other": _l("Other"),
}

WRITE_OFF_LABELS = {
    "BU": _l("Answered by letter"),
    "BE": _l("Answered by e-mail"),
    "TLF": _l("Answered by telephone"),
    "TE": _l("Taken into account"),
    "TO": _l("Taken for information"),
}

JOB_STATUS_LABELS = {"new": _l("New"), "in_progress": _l("In progress"), "done": _l("Done")}
ARCHIVE_STATUS_LABELS = {"new": _l("New"), "archived": _l("Archived"), "failed": _l("Error")}

OPERATION_LABELS = {
    "case_created": _l("Create case folder"),
    "case_closed": _l("Close case"),
    "case_reopened": _l("Reopen case"),
    "post_finalized": _l("Archive journal post"),
    "metadata_corrected": _l("Correct metadata"),
    "post_written_off": _l("Write off journal post"),
    "case_corrected": _l("Correct case title"),
    "post_expedited": _l("Record letter as sent"),
}

INBOX_SOURCE_LABELS = {"scan": _l("Scanned paper"), "svarinn": _l("Digital mail (SvarInn)"),
                       "upload": _l("Uploaded by hand")}
INBOX_STATUS_LABELS = {
    "new": _l("New"), "in_progress": _l("In progress"), "checked": _l("Checked"), "transferred": _l("Transferred"),
    "split": _l("Split up"), "rejected": _l("Rejected"), "system_rejected": _l("Rejected by the system"),
}

DISPATCH_STATUS_LABELS = {"pending": _l("Waiting to be sent"), "sent": _l("Sent"), "confirmed": _l("Delivered"),
                          "failed": _l("Failed"), "replaced": _l("Replaced by a new attempt"),
                          "manual": _l("Handled manually at SvarUt")}
POST_EVENT_LABELS = {
    "sent_to_approval": _l("Sent to approval"), "approved": _l("Approved"), "returned": _l("Returned"),
    "signed": _l("Signed electronically"), "dispatch_requested": _l("Dispatch started"),
    "dispatch_sent": _l("Handed to SvarUt"), "dispatch_confirmed": _l("Delivered"),
    "dispatch_failed": _l("Dispatch failed"), "dispatch_retried": _l("Dispatch retried"),
    "dispatched": _l("Dispatched to every recipient"),
    "dispatch_manual": _l("Handled manually at SvarUt"), "expedited": _l("Letter recorded as sent"),
    "hold_released": _l("Released from hold back"), "hold_kept": _l("Kept held back from access"),
}

# The names of the values a history row keeps (ActivityLog.before/after: cases/service.py and
# cases/posts.py snapshot(), the hold-back decision), and of the roles a document has on its post.
FIELD_LABELS = {
    "number": _l("Number"),
    "kind": _l("Kind of case"),
    "category": _l("Category"),
    "title": _l("Title"),
    "handler": _l("Responsible case handler"),
    "co_handlers": _l("Co-handlers"),
    "access_group": _l("Access group"),
    "status": _l("Status"),
    "type": _l("Type"),
    "document_date": _l("Document date"),
    "received_on": _l("Received"),
    "sent_on": _l("Sent"),
    "correspondents": _l("Sender / recipient"),
    "correspondent_details": _l("Sender / recipient with address"),
    "documents": _l("Documents"),
    "after_downtime": _l("Registered after downtime"),
    "hold_decision": _l("Hold back from access"),
    "hold_reason": _l("Reason"),
    "approver": _l("Approver"),
    "username": _l("Username"),
    "full_name": _l("Full name"),
    "email": _l("E-mail"),
    "locale": _l("Language"),
    "archive_id": _l("User id in the archive"),
    "active": _l("Active"),
    "roles": _l("Roles"),
    "groups": _l("Access groups"),
    "team_roles": _l("Roles through access groups"),
    "name": _l("Name"),
    "description": _l("Description"),
    "members": _l("Members"),
    "coordinator": _l("Team coordinator"),
    "permissions": _l("Permissions"),
    "value": _l("Value"),
    "document": _l("Document"),
    "storage_place": _l("Storage place"),
    "destroy_by": _l("Destroy by"),
    "fagsystem": _l("Name of this case system in the archive"),
    "administrativ_enhet": _l("Administrative unit in the archive"),
    "arkivdel": _l("Archive part (code)"),
}

DOCUMENT_ROLE_LABELS = {"main": _l("Main document"), "attachment": _l("Attachment")}
HOLD_DECISION_LABELS = {"released": _l("Released"), "kept": _l("Kept held back")}

# The main menu, in its order: a page is listed for those whose permissions let them open its view.
MENU_LABELS = {
    "search.search": _l("Search"),
    "clients.new_client": _l("New client"),
    "postreg.inbox": _l("Post registration"),
    "postreg.paper_originals": _l("Paper originals"),
    "cases.approvals": _l("Approvals"),
    "dispatch.failures": _l("Dispatch failures"),
    "cases.outstanding": _l("Outstanding"),
    "cases.worklist": _l("Cases to close"),
    "clients.organisations": _l("Organisations"),
    "admin.users": _l("Users"),
    "admin.groups": _l("Access groups"),
    "admin.roles": _l("Roles and permissions"),
    "admin.archive_settings": _l("Archive settings"),
    "letters.templates": _l("Templates"),
    "statistics.index": _l("Statistics"),
    "archive.log": _l("Archive log"),
    "activity.log": _l("Activity log"),
}
