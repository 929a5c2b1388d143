"""Whatever an admin screen hands in, a route edit is saved or refused with the package's own error, in
readable lines; never another exception (fuzzing the admin API found 200 KB error lines, now cut)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from admin.helpers import INCIDENT, base_data
from enate_routing._loading import parse_config
from enate_routing.admin import Administration, AllowAll, MemoryHistoryStore
from enate_routing.errors import AdminError, ConfigError

ODD = st.sampled_from(["", " ", "\x00", "a\x00b", "\x1b[2J", "\ud800", "n" * 20_000, "*", "**", "@", "a@", ";;", "é",
                       "漢字@例え.jp", "*例え.jp", None, 0, -1, 10**30, 1.5, True, [], {}, ["a"], {"a": 1}, "\\",
                       "%s", "{0}", "a\r\nb", "support@acme.example", "*acme.example"])
FIELDS = ["connector", "name", "address", "target", "rules", "ticket_category", "send_automated_emails",
          "test_mode", "for_attention", "enabled", "acknowledgement", "bogus"]
RULES = ["senders", "recipients", "subject_keywords", "attachment_types", "sender_companies", "important", "bogus"]
CHANGES = st.lists(st.one_of(
    st.tuples(st.sampled_from(FIELDS), ODD),
    st.tuples(st.just("rules"), st.dictionaries(st.sampled_from(RULES), ODD, max_size=3)),
    st.tuples(st.just("target"), st.dictionaries(st.sampled_from([*INCIDENT, "bogus"]), ODD, max_size=3)
              .map(lambda changed: {**INCIDENT, **changed})),
), min_size=1, max_size=4)


@given(CHANGES, st.booleans())
def test_any_route_is_saved_or_refused_in_readable_lines(changes: list[tuple[str, Any]], edit: bool) -> None:
    admin = Administration(parse_config(base_data()), permissions=AllowAll(), history=MemoryHistoryStore(),
                           environ={})
    route: dict[str, Any] = {"connector": "Support", "name": "New", "address": "support@acme.example",
                             "target": dict(INCIDENT)}
    route.update(changes)
    try:
        if edit:
            admin.edit_route("Support", "A1", {k: v for k, v in route.items() if k != "connector"}, actor="ann",
                             expected_version=1)
        else:
            admin.add_route(route, actor="ann", expected_version=1)
    except (ConfigError, AdminError) as error:
        assert all(0 < len(line) < 2_000 for line in str(error).splitlines())
    else:
        assert admin.version == 2
