"""Unit: the option table is the one declaration. docs/options.md is what it generates, the report's
parameter rows are its `in_report` entries, its choices are checked once, and the web UI's form
opens on what a tester sets first."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, render_template_string

from comfyload.common.errors import UserError
from comfyload.harness.webui import order_form_fields
from comfyload.workloads import options
from comfyload.workloads.option_reference import option_reference

REPO = Path(__file__).resolve().parent.parent


def test_docs_options_md_is_what_the_table_gives():
    """On failure: python -m comfyload.workloads.option_reference > docs/options.md"""
    assert (REPO / "docs" / "options.md").read_text() == option_reference()


def test_the_report_shows_the_options_the_table_marks():
    """meta.json names them (the harness writes the table's list); the report shows those, in order."""
    from comfyload.harness.meta import LOCUST_REPORTED
    from reports.metadata import harness_parameters

    parameters = {o.name: o.default for o in options.OPTIONS} | {k: 1 for k in LOCUST_REPORTED}
    reported = [*LOCUST_REPORTED, *options.REPORTED]
    meta = {"parameters": parameters, "reported_parameters": reported}
    assert [k for k, _ in harness_parameters(meta)] == [k for k in reported if parameters[k] is not None]


def test_every_option_is_in_the_reference():
    reference = option_reference()
    for o in options.OPTIONS:
        assert f"`{o.flag}`" in reference and f"`{o.env}`" in reference


@pytest.mark.parametrize("name", [o.name for o in options.OPTIONS if o.choices])
def test_a_value_outside_the_choices_is_refused_naming_the_flag(name):
    with pytest.raises(UserError, match=f"{options.BY_NAME[name].flag} must be one of"):
        options.check_values({name: "nope"})


def test_the_wrapper_offers_every_option_but_those_it_sets_itself():
    wrapper = {o.name for o in options.WRAPPER_OPTIONS}
    assert {"run_dir", "scenario_name"}.isdisjoint(wrapper) and "workflow" in wrapper


def test_the_form_opens_on_what_a_tester_sets_first():
    app = Flask("test")
    fields = {name: {"default_value": ""} for name in ("jobs", "max_backlog", "user_class", "book_profile", "workflow")}
    web_ui = SimpleNamespace(app=app, template_args={}, update_template_args=lambda: None)
    web_ui.update_template_args = lambda: web_ui.template_args.update(extra_options=dict(sorted(fields.items())))
    order_form_fields(web_ui)
    web_ui.update_template_args()
    with app.app_context():
        page = render_template_string("{{ args|tojson }}", args=web_ui.template_args)
    order = sorted(fields, key=page.index)
    assert order == ["workflow", "user_class", "book_profile", "jobs", "max_backlog"]
    assert options.FORM_ORDER[:4] == ("workflow", "user_class", "book_profile", "jobs")
    assert not {"run_dir", "metrics_port"} & set(options.FORM_ORDER)


@pytest.mark.parametrize("named", [7, "jobs", [["jobs"]], None])
def test_a_hand_edited_reported_list_is_read_without_a_traceback(named):
    """meta.json is the user's file once written: a wrong `reported_parameters` still gives rows."""
    from reports.metadata import harness_parameters

    rows = harness_parameters({"parameters": {"jobs": 12}, "reported_parameters": named})
    assert rows == ([] if named == [["jobs"]] else [("jobs", "12")])
