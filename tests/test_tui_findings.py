"""The Findings tab's model: incremental grouping equals a fresh grouping, big groups are capped with a
"more" line, and the tab stays small and answers enter on a group of thousands."""
from __future__ import annotations

import random

import pytest
from pathlib import Path

from s3tail.core.event import make_event
from s3tail.core.rules import RuleEngine
from s3tail.tui.findings import MAX_MEMBERS, FindingGroup, FindingsIndex, More

from test_tui_app import EPOCH, make_app
from s3tail.tui.testing import wait_until
from s3tail.tui.widgets import FindingsView


def anonymous_events(n_ips: int, per_ip: int = 2) -> list:
    """Successful anonymous GETs from ``n_ips`` addresses: one s3.anonymous_access finding each."""
    out = []
    for k in range(per_ip):
        for i in range(n_ips):
            out.append(make_event(source="s3access", bucket="site", key=f"k{i}", operation="REST.GET.OBJECT",
                                  action="GetObject", remote_ip=f"10.0.{i // 250}.{i % 250}", http_status=200,
                                  ts=EPOCH + k * 60 + i % 50, time="x", log_object="mem", log_line=k * n_ips + i + 1,
                                  cipher_suite="TLS_AES", host_header="site.s3.amazonaws.com", tls_version="TLSv1.3",
                                  signature_version="SigV4"))
    return out


def anonymous_line(bucket: str, ip: str, i: int, second: int) -> str:
    """A successful anonymous GET access-log line of 2026-01-01 at ``second`` seconds."""
    ts = f"[01/Jan/2026:00:{second // 60 % 60:02d}:{second % 60:02d} +0000]"
    return (f"o {bucket} {ts} {ip} - R{i} REST.GET.OBJECT k{i} \"GET /k{i} HTTP/1.1\" 200 - 10 10 1 1 \"-\" "
            f"\"curl/8\" - h SigV4 TLS_AES_128_GCM_SHA256 - {bucket}.s3.amazonaws.com TLSv1.3 - -")


def summary(rows: list) -> list:
    out = []
    for r in rows:
        if isinstance(r, FindingGroup):
            out.append(("group", r.rule_id, r.severity, r.count, r.last_seen, len(r.findings)))
        elif isinstance(r, More):
            out.append(("more", r.group.rule_id, r.hidden))
        else:
            out.append(("finding", id(r)))
    return out


@pytest.mark.parametrize("own", [False, True])
def test_incremental_updates_equal_one_update_of_everything(own):
    engine = RuleEngine({})
    evs = anonymous_events(60, per_ip=3)
    random.Random(1).shuffle(evs)
    index = FindingsIndex(own=own)
    for i in range(0, len(evs), 17):
        index.update(engine.process_batch(evs[i:i + 17]))
    fresh = FindingsIndex()
    fresh.update(engine.findings())
    assert summary(index.rows()) == summary(fresh.rows())
    assert len(index) == len(engine.findings()) == 60
    version = index.version
    assert not index.update(engine.findings())   # nothing new: no change, same version
    assert index.version == version
    assert len(index._where) == (0 if own else 60)   # an owner's state is on the (slotted) findings


def test_a_big_group_is_capped_with_a_more_line_and_counts_stay_whole():
    engine = RuleEngine({})
    engine.process_batch(anonymous_events(500))
    index = FindingsIndex()
    index.update(engine.findings())
    rows = index.rows()
    group = rows[0]
    assert isinstance(group, FindingGroup) and len(group.findings) == 500
    assert group.count == sum(f.count for f in engine.findings()) == 1000
    members = rows[1:1 + MAX_MEMBERS]
    assert all(f.rule_id == "s3.anonymous_access" for f in members)
    assert [f.last_ts for f in members] == sorted(f.last_ts for f in members)
    newest = sorted((f.last_ts for f in engine.findings()), reverse=True)[:MAX_MEMBERS]
    assert sorted(f.last_ts for f in members) == sorted(newest)
    assert isinstance(rows[1 + MAX_MEMBERS], More) and rows[1 + MAX_MEMBERS].hidden == 500 - MAX_MEMBERS
    assert len(group.event_refs) == 1000


def test_a_raised_severity_moves_the_finding_to_its_new_group():
    engine = RuleEngine({})
    f = engine.process_batch(anonymous_events(3))[0]
    index = FindingsIndex()
    index.update(engine.findings())
    f.severity = "critical"
    assert index.update([f])
    rows = summary(index.rows())
    assert rows[0] == ("finding", id(f))   # critical first, a group of one
    assert rows[1][:3] == ("group", "s3.anonymous_access", "medium") and rows[1][5] == 2


async def test_the_tab_with_thousands_of_findings_draws_few_rows_and_enter_on_more_shows_the_group(tmp_path: Path):
    d = tmp_path / "logs"
    d.mkdir()
    # 3,000 visitor IPs of a public website bucket: 3,000 findings
    lines = [anonymous_line("site", f"10.{i // 250}.{i % 250}.9", i, i) for i in range(3000)]
    (d / "a.log").write_text("\n".join(lines) + "\n")
    app = make_app("--no-follow", str(d))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(app.findings) >= 3000, what="3,000 findings")
        await pilot.press("2")
        view = app.query_one(FindingsView)
        await wait_until(pilot, lambda: view.row_count > 0)
        assert view.row_count <= 1 + MAX_MEMBERS + 1 + 5   # the group, its newest, "more", a few others
        more = next(i for i, r in enumerate(view._rows) if isinstance(r, More))
        view.move_cursor(row=more)
        await pilot.press("enter")
        assert app.query_one("#tabs").active == "requests"
        assert len(app.table.model.view) == 3000


async def test_findings_keys_move_the_cursor_and_only_screen_rows_are_drawn(tmp_path: Path):
    d = tmp_path / "logs"
    d.mkdir()
    # three buckets x 40 visitors: one group of 120 findings (20 shown, "more")
    lines = [anonymous_line(f"site{b}", f"10.9.{b}.{i}", i, i * 60 + b) for b in range(3) for i in range(40)]
    (d / "a.log").write_text("\n".join(lines) + "\n")
    app = make_app("--no-follow", str(d))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: len(app.findings) >= 120, what="120 findings")
        await pilot.press("2")
        view = app.query_one(FindingsView)
        await wait_until(pilot, lambda: view.row_count == 1 + MAX_MEMBERS + 1)
        assert isinstance(view.selected(), FindingGroup) and view.cursor_row == 0
        await pilot.press("down", "down")
        assert view.cursor_row == 2 and view.selected() is view._rows[2]
        await pilot.press("end")
        assert view.cursor_row == view.row_count - 1 and isinstance(view._rows[-1], More)
        assert isinstance(view.selected(), FindingGroup)   # "more" stands for its group
        await pilot.press("home", "pagedown")
        assert 0 < view.cursor_row < view.row_count
        await pilot.press("pageup")
        assert view.cursor_row == 0
        text = view.visible_text()
        assert text[0].split()[:2] == ["sev", "rule"] and "120 findings" in text[1]
        assert sum("└" in line for line in text) >= 10 and all(len(line) == len(text[0]) for line in text)


class _F:
    """A finding as the index reads it."""

    def __init__(self, rule_id: str, severity: str, last_ts: float) -> None:
        self.rule_id, self.severity, self.title = rule_id, severity, f"{rule_id} title"
        self.count, self.last_ts, self.first_ts = 1, last_ts, last_ts
        self.last_seen = str(last_ts)


def _reference_rows(arrivals: list, max_members: int) -> list:
    """The tab's rows from scratch: per group (severity, rule) its members in order of arrival in it,
    the most recent ``max_members`` (a stable sort: ties go to the earlier arrival), oldest first."""
    from s3tail.core.rules.model import SEVERITY_RANK, iso

    groups: dict = {}
    for f in dict.fromkeys(reversed(arrivals)):        # each finding once, at its last arrival
        groups.setdefault((f.severity, f.rule_id), []).insert(0, f)
    out = []
    for key in sorted(groups, key=lambda k: (-SEVERITY_RANK.get(k[0], 0), k[1])):
        members = groups[key]
        if len(members) == 1:
            out.append(("finding", id(members[0])))
            continue
        last = max(f.last_ts for f in members)
        out.append(("group", key[1], key[0], sum(f.count for f in members), iso(last), len(members)))
        shown = sorted(members, key=lambda f: f.last_ts, reverse=True)[:max_members]
        out.extend(("finding", id(f)) for f in reversed(shown))
        if len(members) > len(shown):
            out.append(("more", key[1], len(members) - len(shown)))
    return out


@pytest.mark.parametrize("own", [False, True])
def test_incremental_index_equals_a_grouping_from_scratch_through_random_updates(own):
    rnd = random.Random(7)
    rules = ["s3.anonymous_access", "s3.enumeration", "s3.security_control_disabled"]
    index = FindingsIndex(max_members=5, own=own)
    other = FindingsIndex(max_members=5, own=True)   # a second owner on the same findings: its own dict
    found: list[_F] = []
    arrivals: list[_F] = []   # a finding arrives in a group when made, and again when it moves
    for _ in range(300):
        touched = []
        for _ in range(rnd.randrange(1, 8)):
            if not found or rnd.random() < 0.4:
                f = _F(rnd.choice(rules), rnd.choice(["low", "medium"]), EPOCH + rnd.randrange(50))
                found.append(f)
                arrivals.append(f)
            else:
                f = rnd.choice(found)
                what = rnd.random()
                if what < 0.6:        # more evidence: count and (maybe) the last time grow
                    f.count += 1
                    f.last_ts = max(f.last_ts, EPOCH + rnd.randrange(60))
                elif what < 0.8:      # a later time alone
                    f.last_ts += rnd.choice((0, 1, 5))
                elif f.severity != "critical":   # escalated: it moves to another group
                    f.severity = "critical" if f.severity == "medium" else "medium"
                    arrivals.append(f)
            touched.append(f)
        index.update(touched)
        other.update(touched)
        want = _reference_rows(arrivals, 5)
        assert summary(index.rows()) == want == summary(other.rows())
    assert len(index) == len(found) == len(other)
    assert not index.update(found)  # nothing changed since: no new version
    assert not other.update(found)
    # an owner keeps the state on the findings it was first to see, not in a dict
    assert (len(index._where), len(other._where)) == ((0, len(found)) if own else (len(found), 0))
