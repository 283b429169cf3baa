"""Provider-hosted templates: the sandbox's renderer and its Nylas and Mailtrap
template APIs. Sends through django-txmail that name a template are in the
root project's ``tests/test_sandbox_templates.py``."""

from __future__ import annotations

import pytest

from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN, DEFAULT_NYLAS_API_KEY
from txmail_sandbox.mustache import MissingVariables, TemplateSyntax, render

NYLAS = {"Authorization": f"Bearer {DEFAULT_NYLAS_API_KEY}"}
MAILTRAP = {"Api-Token": DEFAULT_MAILTRAP_API_TOKEN}
ACCOUNT = "/api/accounts/1001/email_templates"


# The renderer


def test_mustache_variables_are_escaped_unless_triple_braced():
    assert render("{{a}} {{{a}}} {{& a}}", {"a": "<b>&"}) == "&lt;b&gt;&amp; <b>& <b>&"


def test_mustache_sections_lists_objects_and_inverted():
    source = "{{#items}}[{{name}}]{{/items}}{{^items}}none{{/items}} {{#user}}{{email}}{{/user}}"
    assert render(source, {"items": [{"name": "a"}, {"name": "b"}], "user": {"email": "u@x"}}) == (
        "[a][b] u@x"
    )
    assert render(source, {"items": [], "user": None}) == "none "


def test_handlebars_block_helpers():
    source = (
        "{{#if vip}}VIP{{else}}std{{/if}} {{#each xs}}<{{this}}>{{/each}} {{#with u}}{{n}}{{/with}}"
    )
    assert render(source, {"vip": 0, "xs": [1, 2], "u": {"n": "z"}}, engine="handlebars") == (
        "std <1><2> z"
    )


def test_handlebars_each_over_objects_with_data_variables_and_parent_access():
    source = (
        "{{#each prices}}{{@index}}:{{@key}}={{this}}{{#if @last}}.{{/if}} {{../shop}}|{{/each}}"
    )
    out = render(source, {"prices": {"tea": 3, "cake": 4}, "shop": "S"}, engine="handlebars")
    assert out == "0:tea=3 S|1:cake=4. S|"


def test_handlebars_looks_names_up_in_the_current_context_only():
    source = "{{#each people}}{{name}}/{{title}};{{/each}}"
    variables = {"people": [{"name": "Ann"}], "title": "Dr"}
    assert render(source, variables, engine="handlebars") == "Ann/;"
    assert render("{{#people}}{{name}}/{{title}};{{/people}}", variables) == "Ann/Dr;"


def test_mustache_pushes_a_scalar_section_value():
    assert render("{{#name}}[{{.}}]{{/name}}", {"name": "Ann"}) == "[Ann]"


def test_a_literal_brace_after_a_variable_is_kept():
    assert render(".btn{color:{{c}}}", {"c": "red"}) == ".btn{color:red}"


def test_helpers_are_handlebars_only_and_unemulated_ones_are_refused():
    with pytest.raises(TemplateSyntax, match="closes"):  # as mustache.js: "if vip" is a key
        render("{{#if vip}}x{{/if}}", {"vip": True})
    for source in ("{{#if a}}A{{else if b}}B{{/if}}", "{{#myhelper a}}x{{/myhelper}}"):
        with pytest.raises(TemplateSyntax, match="not emulated"):
            render(source, {}, engine="handlebars")


def test_strict_rendering_names_every_missing_variable():
    with pytest.raises(MissingVariables) as info:
        render("{{a}} {{b.c}} {{#d}}x{{/d}}", {"b": {}}, strict=True)
    assert info.value.names == ["a", "b.c", "d"]
    assert render("{{a}}!", {}) == "!"


def test_unbalanced_sections_and_partials_do_not_parse():
    for source in ("{{#a}}x", "x{{/a}}", "{{#a}}{{/b}}", "{{> partial}}", "{{=<% %>=}}"):
        with pytest.raises(TemplateSyntax):
            render(source, {})


# Nylas /v3/templates


def create_nylas(http, sandbox, **fields):
    body = {"name": "Welcome", "subject": "Hi {{name}}", "body": "<p>{{name}}</p>"} | fields
    return http.post(f"{sandbox.url}/v3/templates", json=body, headers=NYLAS, timeout=5)


def test_nylas_templates_can_be_created_read_updated_rendered_and_deleted(txmail_sandbox, http):
    created = create_nylas(http, txmail_sandbox)
    assert created.status_code == 200
    template = created.json()["data"]
    assert (template["object"], template["engine"]) == ("template", "mustache")
    url = f"{txmail_sandbox.url}/v3/templates/{template['id']}"
    assert http.get(url, headers=NYLAS).json()["data"]["subject"] == "Hi {{name}}"
    listed = http.get(f"{txmail_sandbox.url}/v3/templates", headers=NYLAS).json()["data"]
    assert [t["id"] for t in listed] == [template["id"]]
    updated = http.put(url, json={"subject": "Hello {{name}}"}, headers=NYLAS)
    assert updated.json()["data"]["subject"] == "Hello {{name}}"
    rendered = http.post(f"{url}/render", json={"variables": {"name": "Ann"}}, headers=NYLAS)
    assert rendered.json()["data"] == {"subject": "Hello Ann", "body": "<p>Ann</p>"}
    assert http.delete(url, headers=NYLAS).status_code == 200
    assert http.get(url, headers=NYLAS).status_code == 404


def test_nylas_render_is_strict_by_default(txmail_sandbox, http):
    template = create_nylas(http, txmail_sandbox).json()["data"]
    url = f"{txmail_sandbox.url}/v3/templates/{template['id']}/render"
    refused = http.post(url, json={"variables": {}}, headers=NYLAS)
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "name" in refused.json()["error"]["message"]
    lenient = http.post(url, json={"variables": {}, "strict": False}, headers=NYLAS)
    assert lenient.json()["data"] == {"subject": "Hi ", "body": "<p></p>"}


def test_nylas_render_of_a_body_without_storing_it(txmail_sandbox, http):
    answer = http.post(
        f"{txmail_sandbox.url}/v3/templates/render",
        json={"body": "{{#if a}}yes{{/if}}", "engine": "handlebars", "variables": {"a": True}},
        headers=NYLAS,
    )
    assert answer.json()["data"] == {"body": "yes"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"engine": "twig"}, "renders mustache and handlebars"),
        ({"body": "{{#a}}never closed"}, "does not parse"),
        ({"name": None}, "name"),
    ],
)
def test_bad_nylas_templates_are_refused(txmail_sandbox, http, fields, error):
    answer = create_nylas(http, txmail_sandbox, **fields)
    assert answer.status_code == 400 and error in answer.json()["error"]["message"]


def test_nylas_template_api_needs_the_api_key(txmail_sandbox, http):
    assert http.get(f"{txmail_sandbox.url}/v3/templates").status_code == 401


# Mailtrap /api/accounts/{id}/email_templates


def test_mailtrap_templates_can_be_created_listed_updated_and_deleted(txmail_sandbox, http):
    body = {
        "email_template": {"name": "R", "subject": "Receipt {{n}}", "body_html": "<b>{{n}}</b>"}
    }
    created = http.post(f"{txmail_sandbox.url}{ACCOUNT}", json=body, headers=MAILTRAP)
    assert created.status_code == 201
    template = created.json()
    assert template["uuid"] and template["body_text"] == ""
    url = f"{txmail_sandbox.url}{ACCOUNT}/{template['id']}"
    patch = {"email_template": {"body_text": "Receipt {{n}}"}}
    assert http.patch(url, json=patch, headers=MAILTRAP).json()["body_text"] == "Receipt {{n}}"
    assert [
        t["uuid"] for t in http.get(f"{txmail_sandbox.url}{ACCOUNT}", headers=MAILTRAP).json()
    ] == [template["uuid"]]
    assert http.delete(url, headers=MAILTRAP).status_code == 204
    assert http.get(url, headers=MAILTRAP).status_code == 404
    assert http.get(f"{txmail_sandbox.url}{ACCOUNT}").status_code == 401
