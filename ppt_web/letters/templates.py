"""Letter templates: list, create, edit (each save a new kept version), copy, retire and reinstate.

CONTRACT (implemented by the templates helper):

@dataclass TemplateData: name, kind (TemplateKind value), post_type ("U" | "N"), default_title,
    legal_basis, show_national_id: bool, body (HTML from the editor)

active() -> list[LetterTemplate]              not retired, by kind then name (for "Nytt brev frå mal")
listing(actor) -> list[LetterTemplate]        all, retired last (manage_templates)
get(actor, template_id) -> LetterTemplate     manage_templates; 404 (NotFound) for an unknown id
create(actor, data, token=None) -> LetterTemplate        version 1
update(actor, template_id, data, seen_version) -> LetterTemplate
    a new version when anything changed; seen_version (the version the form showed) older than the
    template's -> Conflict naming who saved meanwhile; nothing changed -> Invalid("Nothing was changed.")
copy(actor, template_id) -> LetterTemplate    "Kopi av <name>", version 1, not shipped_key
retire(actor, template_id) / reinstate(actor, template_id)
version(actor, template_id, number) -> LetterTemplateVersion

Every write: manage_templates (require), body = sanitize.clean(body) then merge.check(body)
(Invalid(field="body") names the unknown field), post_type in TEMPLATE_POST_TYPES, an activity row
(template_created / template_changed / template_copied / template_retired / template_reinstated).
"""
