"""The segment rule builder in a real browser (Chromium + Playwright): rows of field / operator /
value, and/or groups, "not", the live member count and the JSON view."""

from __future__ import annotations

import json

from segments.models import Segment

from ..browser import BROWSER_MARKS, login, screenshot
from ..factories import make_contact

pytestmark = BROWSER_MARKS


def count_is(page, text: str) -> None:
    page.wait_for_function(
        "t => document.querySelector('.rb-count-value').textContent.trim() === t", arg=text, timeout=15000)


def test_the_rule_builder_shows_the_live_count_while_editing(page, live_server, alice, acme, globex, tmp_path):
    for state, tags in [("NC", ["vip"]), ("NC", []), ("SC", ["vip"]), ("VA", [])]:
        make_contact(acme, state=state, tags=tags)
    make_contact(globex, state="NC", tags=["vip"])  # never counted for Acme
    login(page, live_server, "alice", "/admin/segments/segment/add/")
    page.fill("#id_name", "Carolina VIPs")
    page.wait_for_selector(".rule-builder .rb-condition")
    # The example rules load as rows; start from an empty group instead.
    while page.locator(".rb-root > .rb-children > .rb-condition .rb-remove").count():
        page.locator(".rb-root > .rb-children > .rb-condition .rb-remove").first.click()
    count_is(page, "4")

    page.click(".rb-root > .rb-group-actions .rb-add-condition")
    row = page.locator(".rb-root > .rb-children > .rb-condition").nth(0)
    row.locator(".rb-field").select_option("state")
    row.locator(".rb-operator").select_option("in")
    row.locator(".rb-value").fill("NC, SC")
    count_is(page, "3")

    page.click(".rb-root > .rb-group-actions .rb-add-condition")
    row = page.locator(".rb-root > .rb-children > .rb-condition").nth(1)
    row.locator(".rb-field").select_option("tags")
    row.locator(".rb-operator").select_option("contains_any")
    row.locator(".rb-value").fill("vip")
    count_is(page, "2")

    row.locator(".rb-not").check()  # not tagged vip
    count_is(page, "1")
    row.locator(".rb-not").uncheck()
    count_is(page, "2")

    page.click(".rb-root > .rb-group-actions .rb-add-group")
    group = page.locator(".rb-root > .rb-children > .rb-group")
    group.locator(".rb-op").select_option("or")
    inner = group.locator(".rb-condition").nth(0)
    inner.locator(".rb-field").select_option("state")
    inner.locator(".rb-operator").select_option("eq")
    inner.locator(".rb-value").fill("SC")
    count_is(page, "1")
    screenshot(page, tmp_path, "segment-builder.png", full_page=True)

    page.click(".rb-toggle-json")
    rules = json.loads(page.input_value("#id_rules"))
    assert rules == {"op": "and", "rules": [
        {"field": "state", "operator": "in", "value": ["NC", "SC"]},
        {"field": "tags", "operator": "contains_any", "value": ["vip"]},
        {"op": "or", "rules": [{"field": "state", "operator": "eq", "value": "SC"}]},
    ]}
    # A power user's JSON edit comes back into the builder.
    page.fill("#id_rules", json.dumps({"op": "and", "rules": [{"field": "state", "operator": "eq", "value": "VA"}]}))
    count_is(page, "1")
    page.click(".rb-toggle-json")
    assert page.locator(".rb-root .rb-condition").count() == 1
    assert page.input_value(".rb-root .rb-condition .rb-value") == "VA"

    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    segment = Segment.objects.get(name="Carolina VIPs")
    assert segment.organization == acme and segment.rules["rules"][0]["value"] == "VA"
    assert "1" in page.inner_text("#result_list tr:has-text('Carolina VIPs') td.field-member_count")


def test_bad_rules_show_the_apis_message_and_no_count(page, live_server, alice, acme):
    make_contact(acme, state="NC")
    login(page, live_server, "alice", "/admin/segments/segment/add/")
    page.wait_for_selector(".rule-builder .rb-condition")
    page.click(".rb-toggle-json")
    page.fill("#id_rules", '{"field": "state", "operator": "within_last_days", "value": 3}')
    count_is(page, "?")
    assert "within_last_days" in page.inner_text(".rb-error")
