"""Letters on a case: made from a template, written in the editor, rendered to the post's main document.

CONTRACT (implemented by the editor helper):

recipient_choices(actor, case) -> list[Choice]    who a letter in this case may go to: the guardians
    known in the case (context.guardians, with their national id for digital post), the client's
    school or kindergarten (organisation, with org number), earlier senders in the case; Choice has
    key (str, stable, no national id in it), label, and the CorrespondentData it becomes
new_letter(actor, case_id, template_id, recipient_keys, token=None) -> JournalPost
    a draft U/N post (template's post type, default title, legal basis) with the chosen
    correspondents (one post, several correspondents), and its Letter: the template's current
    version merged (context.context) and sanitized. journal permission on the case; an active
    template only; once per form token.
save(actor, post_id, body, version) -> Letter
    sanitize, store, version+1. Refused (Conflict) when the post is not a draft, is signed, or
    version != the letter's (someone saved meanwhile: the message says who and when; nothing saved).
preview(actor, post_id) -> bytes        the PDF as it will be sent (not stored)
page_for(post) -> pdf.LetterPage
ensure_document(actor, post, new_files) -> None
    if the post has a letter whose rendered_version != version: render, store_upload, make it the
    post's main document (replacing the previous), set rendered_version/rendered_sha256. Called in
    the transaction of send_for_approval, finalize and the handler's sign, before their checks.
letter_of(post) -> Letter | None
"""
