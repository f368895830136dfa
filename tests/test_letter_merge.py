"""Merge fields and the sanitizer: a template names only offered fields, a merged value is text, and
what the editor sends keeps a letter's formatting and nothing else."""
from __future__ import annotations

import pytest

from ppt_web.errors import Invalid
from ppt_web.letters import context, merge
from ppt_web.letters.sanitize import clean

from . import builders
from .conftest import activity_rows, user

pytestmark = pytest.mark.usefixtures("ctx")


def _ctx(**over):
    values = merge.empty_context()
    values.update(over)
    return values


@pytest.mark.parametrize("body", [
    "{{ klient.namn }} {{ sak.nummer }} {{ dato }} {{ kontor.telefon }}",
    "{% for f in foresette %}<p>{{ f.namn }}<br>{{ f.adresse }}</p>{% endfor %}",
    "{% if godkjennar.namn %}{{ godkjennar.namn }}{% else %}-{% endif %}",
    "{{ mottakar.namn | upper }} {{ mottakarar | length }} {{ klient.namn | default('ukjend') }}",
])
def test_a_template_with_offered_fields_is_accepted(body):
    merge.check(body)


@pytest.mark.parametrize(("body", "says"), [
    ("{{ klient.adress }}", "klient.adress"),
    ("{{ elev.namn }}", "elev"),
    ("{% for f in foresette %}{{ f.fodselsnummer }}{% endfor %}", "f.fodselsnummer"),
    ("{{ foresette.namn }}", "foresette.namn"),
])
def test_an_unknown_field_is_refused_when_saved_and_named(body, says):
    with pytest.raises(Invalid) as refused:
        merge.check(body)
    assert says in str(refused.value.message)
    assert refused.value.details["field"] == "body"


@pytest.mark.parametrize("body", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ klient.__class__ }}",
    "{{ klient.namn.__class__ }}",
    "{{ klient.namn.upper() }}",
    "{{ klient['namn'] }}",
    "{% set x = klient %}{{ x }}",
    "{% include 'base.html' %}",
    "{% import 'base.html' as b %}",
    "{% extends 'base.html' %}",
    "{% macro m() %}{% endmacro %}",
    "{{ klient.namn | safe }}",
    "{{ klient.namn | attr('__class__') }}",
    "{{ cycler }}",
    "{{ range(10) }}",
    "{% for x in klient %}{% endfor %}",
    "{{ config }}",
    "{{ self }}",
    "{{",
])
def test_sandbox_escapes_and_code_are_refused(body):
    with pytest.raises(Invalid):
        merge.check(body)
    with pytest.raises(Invalid):
        merge.merge(body, _ctx())


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "{{ 7*7 }}", "{% include 'x' %}", "Ærlig & Øye"])
def test_a_merged_value_comes_out_as_text(name):
    values = _ctx(klient={**merge.empty_context()["klient"], "namn": name})
    out = clean(merge.merge("<p>{{ klient.namn }}</p>", values))
    assert "<script>" not in out and "49" not in out
    assert out.startswith("<p>") and ("&lt;script&gt;" in out or "{{ 7*7 }}" in out or "{%" in out or "&amp;" in out)


def test_an_address_keeps_its_lines_and_escapes_each():
    party = merge.Party("Kari <b>", "Vegen 1\n<i>Postboks</i> 2", "6100", "Volda")
    out = merge.merge("<p>{{ mottakar.namn }}<br>{{ mottakar.adresse }}</p>", _ctx(mottakar=party.fields()))
    assert out == "<p>Kari &lt;b&gt;<br>Vegen 1<br>&lt;i&gt;Postboks&lt;/i&gt; 2</p>"


def test_every_field_is_listed_for_the_template_editor():
    names = dict(merge.field_names())
    assert "klient.namn" in names and "foresette[].adresse" in names and "dato" in names
    for name in names:
        head = name.split(".")[0].removesuffix("[]")
        assert head in merge.FIELDS


# ------------------------------------------------------------------------------ the sanitizer

@pytest.mark.parametrize(("dirty", "gone"), [
    ('<p>a<script>alert(1)</script></p>', "script"),
    ('<p onclick="steal()">a</p>', "onclick"),
    ('<p><img src="x" onerror="steal()"></p>', "onerror"),
    ('<p style="color:#fff">hidden</p>', "style"),
    ('<p style="display:none">hidden</p>', "display"),
    ('<p><span style="font-size:0">hidden</span></p>', "font-size"),
    ('<p class="hidden sr-only">a</p>', "hidden"),
    ('<p><img src="https://tracker.example/pixel.png"></p>', "tracker"),
    ('<p><img src="//tracker.example/pixel.png"></p>', "tracker"),
    ('<p><a href="javascript:alert(1)">x</a></p>', "javascript"),
    ('<p><a href="data:text/html,<script>x</script>">x</a></p>', "data:"),
    ('<iframe src="https://example.org"></iframe>', "iframe"),
    ('<style>p { display: none }</style><p>a</p>', "display"),
    ('<svg><script>alert(1)</script></svg>', "svg"),
    ('<p><!-- a comment --></p>', "comment"),
])
def test_the_sanitizer_strips_what_could_run_hide_text_or_fetch(dirty, gone):
    assert gone not in clean(dirty)


PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChw"
       "GA60e6kgAAAABJRU5ErkJggg==")


def test_the_sanitizer_keeps_a_letters_formatting():
    html = ('<h2>Bakgrunn</h2><p class="ql-align-center"><strong>Viktig</strong> <em>no</em> <u>u</u></p>'
            '<ol><li>ein</li><li class="ql-indent-1">to</li></ol><ul><li>punkt</li></ul>'
            '<table><tbody><tr><td data-row="row-ab12">1</td><td data-row="row-ab12">2</td></tr></tbody></table>'
            '<p><a href="https://lovdata.no" rel="noopener noreferrer">lova</a></p>'
            f'<p><img src="{PNG}"></p>')
    assert clean(html) == html


def test_an_inline_image_that_is_not_png_or_jpeg_is_dropped():
    assert "img" not in clean('<p><img src="data:image/svg+xml;base64,PHN2Zz4="></p>')


# ------------------------------------------------------------------------------ the values

def test_the_context_masks_the_national_id_unless_the_template_allows_it():
    case = builders.case()
    masked = context.context(user("radgjevar1"), case, [])
    assert masked["klient"]["fodselsnummer"] == case.client.masked_id
    assert not activity_rows("national_id_shown")
    full = context.context(user("radgjevar1"), case, [], show_national_id=True)
    assert full["klient"]["fodselsnummer"] == case.client.national_id
    assert len(activity_rows("national_id_shown")) == 1


def test_the_context_knows_the_guardians_from_the_case_and_the_letterhead(app):
    case = builders.case()
    builders.post(case, post_type="I", title="Tilvising", correspondent="Solsida skule")
    from ppt_web.cases import posts as post_service
    post_service.create_post(user("radgjevar1"), case.id, post_service.PostData(
        post_type="U", title="Brev", correspondents=[post_service.CorrespondentData(
            name="Kari Føresett", address="Vegen 1", postal_code="6100", city="Volda",
            national_id=builders.valid_national_id(900))]))
    app.config["PPT_LETTERHEAD"] = {"name": "PPT for Ytre Fjord", "phone": "70 00 00 00"}
    values = context.context(user("radgjevar1"), case, [merge.Party("Skulen", "Skulevegen 2", "6100", "Volda")])
    assert [g["namn"] for g in values["foresette"]] == ["Kari Føresett"]
    assert values["mottakar"]["namn"] == "Skulen"
    assert values["kontor"]["namn"] == "PPT for Ytre Fjord" and values["kontor"]["telefon"] == "70 00 00 00"
    assert values["sak"]["nummer"] == case.number
    assert values["saksbehandlar"]["namn"] == user("radgjevar1").full_name


def test_the_letters_guardians_are_the_ones_the_new_letter_form_offers_never_the_client():
    """A correspondent registered with the client's own national id (an older pupil writing in) is not a
    guardian in the merge fields, as it is not among the guardians "Nytt brev frå mal" offers."""
    from ppt_web.cases import posts as post_service
    from ppt_web.letters import service

    case = builders.case()
    for name, nid in (("Kari Føresett", builders.valid_national_id(901)), (case.client.name, case.client.national_id)):
        post_service.create_post(user("radgjevar1"), case.id, post_service.PostData(
            post_type="U", title="Brev", correspondents=[post_service.CorrespondentData(
                name=name, address="Vegen 1", postal_code="6100", city="Volda", national_id=nid)]))
    merged = [g["namn"] for g in context.context(user("radgjevar1"), case, [])["foresette"]]
    offered = [c.label for c in service.recipient_choices(user("radgjevar1"), case) if c.kind == "guardian"]
    assert merged == offered == ["Kari Føresett"]
