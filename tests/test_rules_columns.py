"""RuleEngine.process_columns against process_batch (the reference): the same findings on every rule
scenario of test_rules_engine.py, the public corpus, generated traffic, attack episodes, out-of-order
and mixed batches, user rules, config overrides and any batch size."""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
sys.path.insert(0, str(Path(__file__).parent))
import rulekit  # noqa: E402
import test_rules_engine as unit  # noqa: E402
from test_rules_engine import *  # noqa: E402,F401,F403  (every rule scenario, run again below through both paths)

from s3tail.core import columns  # noqa: E402
from s3tail.core.columns import ColumnBatch, from_events  # noqa: E402
from s3tail.core.event import Event  # noqa: E402
from s3tail.core.reader import iter_sources  # noqa: E402
from s3tail.core.rules import RuleEngine  # noqa: E402
from s3tail.core.rules.model import MAX_REFS, MAX_SAMPLES  # noqa: E402

from conftest import CORPUS, SHARED  # noqa: E402

GENERATOR = SHARED / "tools" / "gen_s3_access_logs.py"
USER_RULES = Path(__file__).parent / "fixtures" / "rules" / "user_rules"
WINDOWED = {"s3.object_access_errors", "s3.enumeration", "s3.mass_download", "s3.mass_delete"}
WEB = {"public_buckets": ["acme-prod-static-assets", "acme-www-media"]}


def fingerprint(findings) -> list:
    """Everything a finding holds (contract fields, refs, details), order-free."""
    return sorted((f.rule_id, repr(f.dedup_key), f.first_ts, f.last_ts, f.count, f.severity, f.title, f.bucket,
                   f.requester, f.remote_ip, tuple(f.evidence), tuple(f.event_refs), repr(sorted(f.details.items())),
                   f.closed) for f in findings)


class PlainBatch(ColumnBatch):
    """A column batch that is not an EventBatch (as the C block batch): ``find`` and light rows."""

    def __init__(self, src: columns.EventBatch):
        super().__init__(src.dicts, src.n, src.codes, src.nums, src.log_line, src.offset, src.others)
        self._evs = src._events
        self.event_calls = 0

    def event(self, i: int) -> Event:
        self.event_calls += 1
        return self._evs[i]

    def text(self, field: str) -> list[str]:  # the block batch searches its own bytes
        from s3tail.core.rules.engine import field_values
        return field_values(field, self._evs)


def by_events(events, batch, config=None, rules_dir=None) -> RuleEngine:
    engine = RuleEngine(config or {}, rules_dir)
    for i in range(0, len(events), batch):
        engine.process_batch(events[i:i + batch])
    engine.flush()
    return engine


def by_columns(events, batch, config=None, rules_dir=None, plain=False, touched=None) -> RuleEngine:
    engine = RuleEngine(config or {}, rules_dir)
    dicts = columns.Dicts()
    for i in range(0, len(events), batch):
        b = from_events(events[i:i + batch], dicts)
        out = engine.process_columns(PlainBatch(b) if plain else b)
        if touched is not None:
            touched.append(fingerprint(out))
    engine.flush()
    return engine


def by_mixed(events, batch, config=None, event_path=lambda k: k % 3 == 1) -> RuleEngine:
    """Batches through process_batch where ``event_path(batch number)``, else process_columns."""
    engine = RuleEngine(config or {})
    dicts = columns.Dicts()
    for k, i in enumerate(range(0, len(events), batch)):
        part = events[i:i + batch]
        if event_path(k):
            engine.process_batch(part)
        else:
            engine.process_columns(from_events(part, dicts))
    engine.flush()
    return engine


def assert_same(events, batch=2000, config=None, rules_dir=None, plain=False) -> list:
    ref = by_events(events, batch, config, rules_dir)
    col = by_columns(events, batch, config, rules_dir, plain)
    assert fingerprint(col.findings()) == fingerprint(ref.findings())
    assert col.errors == ref.errors
    return ref.findings()


def read(path) -> list[Event]:
    return [e for e in iter_sources([str(path)]) if type(e) is Event]


# ------------------------------------------------------------------ every unit scenario, both paths

@pytest.fixture(autouse=True)
def both_paths(monkeypatch):
    """``run`` of test_rules_engine.py (imported above) checks the column path against the event path,
    with batches as given and as light rows (no EventBatch), then returns the event path's findings."""
    original = rulekit.run

    def run(events, config=None, rules_dir=None, batch=None):
        events = list(events)
        ref = original(events, config, rules_dir, batch)
        size = batch or max(1, len(events))
        for plain in (False, True):
            col = by_columns(events, size, config, rules_dir, plain)
            assert fingerprint(col.findings()) == fingerprint(ref)
        return ref
    monkeypatch.setattr(unit, "run", run)
    yield


# ------------------------------------------------------------------ corpus, generated traffic

@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[Event]:
    if not GENERATOR.is_file():
        pytest.skip(f"{GENERATOR} absent: ../shared is only beside clones inside the workspace")
    path = tmp_path_factory.mktemp("gen") / "gen.log"
    with open(path, "w", encoding="utf-8") as out:
        subprocess.run([sys.executable, str(GENERATOR), "--lines", "50000", "--seed", "1"], check=True, stdout=out)
    return read(path)


def test_public_corpus_same_findings(corpus_dir):
    events = []
    for path in sorted(corpus_dir.iterdir()):
        if path.suffix in (".log", ".json", ".jsonl"):
            events.extend(read(path))
    assert len(events) > 100
    findings = assert_same(events, 500)
    assert {f.rule_id for f in findings} >= {"s3.bucket_policy_change", "s3.anonymous_access"}
    assert_same(events, 500, plain=True)


@pytest.mark.parametrize("config", [{}, WEB])
def test_generated_traffic_same_findings(generated, config):
    findings = assert_same(generated, 4000, config)
    assert len(findings) > 100


def test_generated_traffic_light_rows_and_few_events(generated):
    """Without EventBatch (as from_block), the same findings; full events only for rows codes cannot decide."""
    engine = RuleEngine(WEB)
    dicts = columns.Dicts()
    calls = 0
    for i in range(0, len(generated), 5000):
        b = PlainBatch(from_events(generated[i:i + 5000], dicts))
        engine.process_columns(b)
        calls += b.event_calls
    engine.flush()
    assert fingerprint(engine.findings()) == fingerprint(by_events(generated, 5000, WEB).findings())
    assert calls < len(generated) * 0.05


@pytest.mark.parametrize("take_slice", [None, 2])
def test_between_rules_is_called_before_each_rule_and_changes_nothing(generated, take_slice, monkeypatch):
    """The hook a terminal app lets key presses through at: once before each active rule of a call,
    and between slices of a long run of windowed hits (sliced small here: the same findings)."""
    from s3tail.core.rules import vector

    if take_slice:
        monkeypatch.setattr(vector, "TAKE_SLICE", take_slice)
    config = {**WEB, "rules": {"s3.object_access_errors": {"min_error_share": 0.02}}}   # (windows that fire)
    engine = RuleEngine(config)
    calls: list[int] = []
    engine.between_rules = lambda: calls.append(len(calls))
    dicts = columns.Dicts()
    batches = 0
    for i in range(0, len(generated), 5000):
        engine.process_columns(from_events(generated[i:i + 5000], dicts))
        batches += 1
    engine.flush()
    per_rule = batches * len(engine.active)
    assert len(engine.active) > 10
    assert len(calls) > per_rule if take_slice else len(calls) == per_rule
    assert fingerprint(engine.findings()) == fingerprint(by_events(generated, 5000, config).findings())


@pytest.mark.parametrize("batch", [1, 333, 7000])
def test_batch_boundaries(generated, batch):
    events = generated[:3000] if batch == 1 else generated
    assert_same(events, batch, WEB)


def test_same_findings_whatever_the_column_batch_size(generated):
    a = by_columns(generated, 2500, WEB)
    b = by_columns(generated, 12000, WEB)
    assert fingerprint(a.findings()) == fingerprint(b.findings())


def test_returned_findings_match_event_path_per_batch(generated):
    """process_columns returns the findings each batch created or updated, as process_batch does."""
    ref_engine = RuleEngine(WEB)
    col_touched: list = []
    by_columns(generated[:20000], 2000, WEB, touched=col_touched)
    for k, i in enumerate(range(0, 20000, 2000)):
        assert fingerprint(ref_engine.process_batch(generated[i:i + 2000])) == col_touched[k]


def test_out_of_order_batches(generated):
    """Log objects arriving late: batches in reverse and shuffled order."""
    chunks = [generated[i:i + 1500] for i in range(0, len(generated), 1500)]
    rnd = random.Random(4)
    shuffled = chunks[:]
    rnd.shuffle(shuffled)
    for order in (chunks[::-1], shuffled):
        events = [e for c in order for e in c]
        assert_same(events, 1500, WEB)


def test_mixed_event_and_column_batches(generated):
    events = generated[:30000]
    ref = by_events(events, 2000, WEB)
    assert fingerprint(by_mixed(events, 2000, WEB).findings()) == fingerprint(ref.findings())


def test_user_rules_and_their_errors(generated):
    assert_same(generated[:20000], 2000, WEB, str(USER_RULES))


@pytest.mark.parametrize("config", [
    {"rules": {"s3.mass_download": {"threshold": 50 << 20, "distinct": 40, "object_cap": 0, "skip_services": False},
               "s3.object_access_errors": {"min_error_share": 0, "skip_services": False, "threshold": 3},
               "s3.enumeration": {"min_error_share": 0.1, "window": 15, "severity": "high"},
               "s3.mass_delete": {"threshold": 5, "skip_services": False}}},
    {"rules": {"s3.anonymous_access": {"enabled": False}, "s3.sigv2_request": {"dedup": 5},
               "s3.insecure_transport": {"dedup": 30, "severity": "info"}},
     "sensitive_patterns": ["*.csv", "*backup*"], "public_buckets": ["acme-*"],
     "log_prefixes": ["s3://acme-prod-logs/", "/logs/"]},
    {"allowlists": {"ip": {"acme-prod-*": ["10.0.0.0/8"]},
                    "requesters": {"acme-data*": ["arn:aws:sts::123456789012:assumed-role/etl-*"]}}},
])
def test_config_overrides(generated, config):
    findings = assert_same(generated[:25000], 2500, config)
    assert findings


# ------------------------------------------------------------------ attack episodes (the held-out check)

@pytest.fixture(scope="module")
def background() -> tuple[list[Event], float, float]:
    if not GENERATOR.is_file():
        pytest.skip(f"{GENERATOR} absent: ../shared is only beside clones inside the workspace")
    text = subprocess.run([sys.executable, str(GENERATOR), "--lines", "30000", "--seed", "5"], check=True,
                          capture_output=True, text=True).stdout
    return text


@pytest.mark.parametrize("placement", ["appended", "prepended"])
def test_episodes_raise_their_rule_over_columns(background, tmp_path, placement):
    import test_rules_episodes as te
    path = tmp_path / "bg.log"
    path.write_text(background, encoding="utf-8")
    times = [e.ts for e in read(path)]
    eps = te.episodes(min(times), max(times))
    extra = "".join(line + "\n" for _, _, lines in eps for line in lines)
    path.write_text(background + extra if placement == "appended" else extra + background, encoding="utf-8")
    events = read(path)
    findings = assert_same(events, 2000)
    col = by_columns(events, 2000, plain=True).findings()
    assert fingerprint(col) == fingerprint(findings)
    windowed = [f for f in col if f.rule_id in WINDOWED]
    raised = {(f.rule_id, f.actor) for f in windowed}
    for rule_id, actor, _ in eps:
        assert (rule_id, actor) in raised, f"{rule_id} not raised for {actor}"
    actors = {actor for _, actor, _ in eps}
    assert not [f for f in windowed if f.actor not in actors]


def test_episode_split_across_many_small_batches():
    """A mass download spread over 40 batches, interleaved with another actor: the store's window."""
    ep_events = [rulekit.ev(key=f"o/{i}", at=i, bytes_sent=1000) for i in range(600)]
    other = [rulekit.ev(key=f"x/{i % 3}", at=i + 0.5, requester=rulekit.OTHER, bytes_sent=10) for i in range(600)]
    events = sorted(ep_events + other, key=lambda e: e.ts)
    findings = assert_same(events, 30)
    hits = [f for f in findings if f.rule_id == "s3.mass_download"]
    assert [f.actor for f in hits] == [rulekit.ACTOR] and hits[0].count >= 500


# ------------------------------------------------------------------ bulk paths (run_single, request counts)

ANON = "s3.anonymous_access"


def anonymous_traffic(seed: int) -> list[Event]:
    """Anonymous reads: one busy visitor (past MAX_REFS), visitors of a few requests, some rows late
    (older than their finding's first), in time order otherwise."""
    rnd = random.Random(seed)
    out = []
    for i in range(1400):
        at = i * 3.0
        out.append(rulekit.ev(at=at, requester=None, remote_ip="203.0.113.9", key=f"k/{i % 40}"))
        if i % 5 == 0:
            out.append(rulekit.ev(at=at + 1, requester=None, remote_ip=f"192.0.2.{rnd.randrange(30)}",
                                  bucket=rnd.choice(["acme-data", "acme-www"])))
        if i % 97 == 0 and i:
            out.append(rulekit.ev(at=at - rnd.randrange(60, 900), requester=None,
                                  remote_ip=f"192.0.2.{rnd.randrange(30)}"))
    return out


def count_calls(monkeypatch, cls, name) -> list:
    calls: list = []
    original = getattr(cls, name)

    def wrapper(self, rule, *args, **kw):
        calls.append(rule.id)
        return original(self, rule, *args, **kw)
    monkeypatch.setattr(cls, name, wrapper)
    return calls


@pytest.mark.parametrize("batch", [1, 7, 64, 500, 5000])
@pytest.mark.parametrize("dedup", [60, 2, 0.05])
def test_bulk_joins_dedup_expiry_and_caps(batch, dedup, monkeypatch):
    """Groups decided in bulk: joins into open findings across batch boundaries, dedup periods ending
    inside a batch (short dedup), late rows (the per-row path), refs and samples at their caps."""
    from s3tail.core.rules.vector import ColumnRunner
    events = anonymous_traffic(batch + int(dedup))
    config = {"rules": {ANON: {"dedup": dedup}}}
    bulk = count_calls(monkeypatch, ColumnRunner, "run_single")
    for plain in (False, True):
        findings = assert_same(events, batch, config, plain=plain)
    assert ANON in bulk
    anon = [f for f in findings if f.rule_id == ANON]
    if dedup == 60:
        busy = max(anon, key=lambda f: f.count)
        assert busy.count > MAX_REFS and len(busy.event_refs) == MAX_REFS and len(busy.evidence) == MAX_SAMPLES
    else:
        assert len(anon) > 20


def test_bulk_path_takes_in_order_groups_without_rows(monkeypatch):
    """In-order traffic within one dedup period: every anonymous group is decided in bulk (no light
    row reaches _take)."""
    events = sorted((e for e in anonymous_traffic(1) if e.ts < rulekit.T0 + 3000), key=lambda e: e.ts)
    taken = count_calls(monkeypatch, RuleEngine, "_take")
    col = by_columns(events, 300)
    assert ANON not in taken
    assert fingerprint(col.findings()) == fingerprint(by_events(events, 300).findings())


def test_bulk_path_with_event_batches_between():
    """Mixed use: event-path batches create and join findings the bulk path then joins (and back)."""
    events = anonymous_traffic(3)
    ref = by_events(events, 100)
    assert fingerprint(by_mixed(events, 100, event_path=lambda k: k % 2).findings()) == fingerprint(ref.findings())


def test_bulk_findings_close_through_pop_closed():
    """Findings made in bulk are scheduled: pop_closed closes them as event time passes, as the event
    path's do (same findings closed at each step)."""
    events = anonymous_traffic(2)
    ref, col = RuleEngine({}), RuleEngine({})
    dicts = columns.Dicts()
    for i in range(0, len(events), 250):
        part = events[i:i + 250]
        ref.process_batch(part)
        col.process_columns(from_events(part, dicts))
        assert fingerprint(col.pop_closed()) == fingerprint(ref.pop_closed())
    assert fingerprint(col.findings()) == fingerprint(ref.findings())


def test_new_dicts_midway(generated):
    """A long follow replaces a full Dicts: later batches carry another ``dicts`` (other codes)."""
    events = generated[:24000]
    ref = by_events(events, 2000, WEB)
    for plain in (False, True):
        engine = RuleEngine(WEB)
        dicts = columns.Dicts()
        for k, i in enumerate(range(0, len(events), 2000)):
            if k in (4, 9):
                dicts = columns.Dicts()
            b = from_events(events[i:i + 2000], dicts)
            engine.process_columns(PlainBatch(b) if plain else b)
        engine.flush()
        assert fingerprint(engine.findings()) == fingerprint(ref.findings())


def error_traffic() -> list[Event]:
    """Error bursts of actors whose other requests make their error share pass or fail, over spans
    that cut column batches into request-count pieces."""
    out = []
    for a in range(6):
        who = f"arn:aws:iam::123456789012:user/u{a}"
        for i in range(900):
            at = a * 50 + i * 1.5
            err = (i % (2 + a)) == 0
            out.append(rulekit.ev(at=at, requester=who, http_status=403 if err else 200,
                                  key=f"d/{i % (7 + a)}", bucket=f"b{a % 2}"))
    out.sort(key=lambda e: e.ts)
    return out


@pytest.mark.parametrize("batch", [7, 300, 2000])
def test_error_share_over_request_pieces(batch):
    """min_error_share against request counts kept per batch (pieces of REQ_CHUNK rows when a batch
    spans more than REQ_SPAN seconds), in order, reversed, and with event-path batches between."""
    events = error_traffic()
    findings = assert_same(events, batch)
    assert {"s3.object_access_errors", "s3.enumeration"} & {f.rule_id for f in findings}
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    assert_same([e for c in chunks[::-1] for e in c], batch)
    mixed = by_mixed(events, batch, event_path=lambda k: k % 3 == 2)
    assert fingerprint(mixed.findings()) == fingerprint(by_events(events, batch).findings())


def test_one_batch_spanning_longer_than_the_request_counts_are_kept(generated):
    """A batch whose events span more than the request counts are kept (the error-share test reads
    them) must not drop the counts its own early events are judged against: one batch of everything
    gives the findings of small batches, on both paths."""
    config = {"rules": {"s3.object_access_errors": {"window": 2, "threshold": 2},
                        "s3.enumeration": {"window": 1, "threshold": 3}}}
    keep = RuleEngine(config)._req_keep
    times = [e.ts for e in generated if e.ts is not None]
    assert max(times) - min(times) > 2 * keep
    small = fingerprint(by_events(generated, 2000, config).findings())
    assert fingerprint(by_events(generated, len(generated), config).findings()) == small
    assert fingerprint(by_columns(generated, len(generated), config).findings()) == small


# ------------------------------------------------------------------ round 3: code verdicts, segments, lazy evidence

LOGS = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/14/"


def tampering_traffic(seed: int) -> list[Event]:
    """Writes and deletes of log objects (AWSLogs/, an any-bucket prefix, a prefix of one bucket) and of
    ordinary keys, by people, service principals, aws-internal agents and lifecycle (S3.*), some failing,
    with CloudTrail DeleteObjects (several keys, some logs) and PutObject rows in between."""
    rnd = random.Random(seed)
    keys = [LOGS + "a.json.gz", "logs/app/2024-05-14.log", "audit/x.log", "data/file.csv", "AWSLogs/", "x/AWSLogs/y",
            "audit-not/x", None]
    who = [rulekit.ACTOR, rulekit.OTHER, "svc:logging.s3.amazonaws.com", None]
    ops = ["REST.PUT.OBJECT", "REST.DELETE.OBJECT", "REST.COPY.OBJECT_GET", "REST.POST.UPLOAD", "BATCH.DELETE.OBJECT",
           "S3.EXPIRE.OBJECT", "REST.GET.OBJECT", "REST.POST.MULTI_OBJECT_DELETE", "REST.PUT.ACL"]
    out = []
    for i in range(3000):
        at = i * 2.0
        if i % 17 == 0:
            objs = [{"Key": k} for k in rnd.sample([LOGS + f"{i}.gz", "data/a", "logs/b", "audit/c", 7], 3)]
            out.append(rulekit.ct("DeleteObjects", {"bucketName": "acme-logs", "delete": {"Object": objs}}, at=at,
                                  bucket=rnd.choice(["acme-logs", "acme-data"]),
                                  error=rnd.choice([None, None, "AccessDenied"])))
            continue
        if i % 23 == 0:
            out.append(rulekit.ct("PutObject", {"bucketName": "acme-logs", "key": LOGS + "b"}, at=at, key=LOGS + "b",
                                  requester=rnd.choice(who[:3])))
            continue
        requester = rnd.choice(who)
        out.append(rulekit.ev(rnd.choice(ops), rnd.choice(keys), at=at, requester=requester,
                              bucket=rnd.choice(["acme-logs", "acme-data"]),
                              http_status=rnd.choice([200, 200, 204, 403]),
                              user_agent=rnd.choice(["aws-cli/2.15.0", "aws-internal/3 aws-sdk-java/1.12"]),
                              remote_ip=f"192.0.2.{rnd.randrange(9)}"))
    return out


@pytest.mark.parametrize("config", [
    {},
    {"log_prefixes": ["/logs/", "s3://acme-logs/audit/", "acme-data/data/"]},
    {"log_prefixes": ["s3://acme-logs"]},
])
@pytest.mark.parametrize("batch", [50, 3000])
def test_log_tampering_code_verdict(config, batch, monkeypatch):
    """s3.log_tampering decided per code on access-log rows (AWSLogs/ and log_prefixes per key code and
    bucket, write/delete operations per request code, service principals per identity code), CloudTrail
    rows (DeleteObjects keys) through the rule's match: the event path's findings, and no full event
    for an access-log row."""
    events = tampering_traffic(batch)
    findings = assert_same(events, batch, config)
    assert [f for f in findings if f.rule_id == "s3.log_tampering"]
    assert_same(events, batch, config, plain=True)
    from s3tail.core.rules import vector
    slow_sources: list = []
    original = vector._Ctx.rule_rows

    def rule_rows(self, rule):
        fast, weight, slow = original(self, rule)
        if rule.id == "s3.log_tampering":
            slow_sources.extend(self.batch.event(i).source for i in slow.tolist())
        return fast, weight, slow
    monkeypatch.setattr(vector._Ctx, "rule_rows", rule_rows)
    by_columns(events, batch, config)
    assert slow_sources and set(slow_sources) == {"cloudtrail"}


def test_bulk_segments_several_findings_per_group_in_one_batch(monkeypatch):
    """In-order traffic spanning several dedup periods per group in one batch: every group decided in
    bulk (segments found with numpy, no light row through _take), the event path's findings."""
    events = sorted(anonymous_traffic(5), key=lambda e: e.ts)
    config = {"rules": {ANON: {"dedup": 20}}}
    taken = count_calls(monkeypatch, RuleEngine, "_take")
    col = by_columns(events, 5000, config)
    assert ANON not in taken
    ref = by_events(events, 5000, config)
    assert fingerprint(col.findings()) == fingerprint(ref.findings())
    anon = [f for f in ref.findings() if f.rule_id == ANON]
    assert max(sum(1 for g in anon if g.dedup_key == f.dedup_key) for f in anon) > 2


def test_bulk_segments_fall_back_past_max_splits_and_out_of_order(monkeypatch):
    """Groups with more segments than MAX_SPLITS in a batch, and groups whose rows are out of order
    across dedup periods, take the row-by-row code: same findings."""
    from s3tail.core.rules.vector import MAX_SPLITS
    events = sorted(anonymous_traffic(6), key=lambda e: e.ts)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    config = {"rules": {ANON: {"dedup": 0.3}}}
    for evs in (events, shuffled):
        taken = count_calls(monkeypatch, RuleEngine, "_take")
        assert_same(evs, 4200, config)
        assert_same(evs, 4200, config, plain=True)
        assert ANON in taken
    per_group = max(sum(1 for e in events if e.remote_ip == ip) for ip in {e.remote_ip for e in events})
    assert per_group * 3 > 180 * MAX_SPLITS   # the busy visitor needs more segments than MAX_SPLITS


def test_lazy_evidence_read_between_batches():
    """Findings made in bulk build their refs and samples when read: read some (and not others) between
    batches that then join them: the event path's evidence either way."""
    events = anonymous_traffic(7)
    ref = by_events(events, 400)
    engine = RuleEngine({})
    dicts = columns.Dicts()
    for k, i in enumerate(range(0, len(events), 400)):
        engine.process_columns(from_events(events[i:i + 400], dicts))
        for f in engine.findings()[k % 3::3]:
            assert len(f.evidence) <= MAX_SAMPLES and len(f.event_refs) <= MAX_REFS
    engine.flush()
    assert fingerprint(engine.findings()) == fingerprint(ref.findings())
    assert [f.to_dict() for f in sorted(engine.findings(), key=fingerprint_one)] == \
        [f.to_dict() for f in sorted(ref.findings(), key=fingerprint_one)]


def fingerprint_one(f):
    return fingerprint([f])[0]


def test_lazy_evidence_loaded_when_the_dicts_are_replaced(generated):
    """A new Dicts (a long follow): findings made in bulk under the old one hold its values no longer."""
    from s3tail.core.rules.model import LazyFinding
    engine = RuleEngine({})
    dicts = columns.Dicts()
    engine.process_columns(from_events(generated[:6000], dicts))
    lazy = [f for f in engine.findings() if type(f) is LazyFinding and f._src is not None]
    assert lazy
    engine.process_columns(from_events(generated[6000:8000], columns.Dicts()))
    assert all(f._src is None for f in lazy)


def test_pentest_literals_cover_every_alternative():
    """PENTEST_LITERALS (the column path's ASCII prefilter of s3.pentest_user_agent): each top-level
    alternative of PENTEST_UA contains one of them."""
    from s3tail.core.rules.builtin import PENTEST_LITERALS, PENTEST_UA
    alts, depth, cur = [], 0, ""
    pattern = PENTEST_UA.pattern
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            cur += pattern[i:i + 2]
            i += 2
            continue
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            alts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    alts.append(cur)
    assert len(alts) > 30
    for alt in alts:
        plain = alt.replace("\\", "").replace(" ?", " ").lower()
        assert any(lit.rstrip() in plain for lit in PENTEST_LITERALS), alt


def test_pentest_user_agents_ascii_and_not():
    """User agents that match only through Unicode case folding (long s, Kelvin sign) or plain ones:
    the event path's findings."""
    uas = ["Mozilla/5.0 (X11; Kali; Linux)", "\u017flurp/1.0", "\u212aali Linux", "sqlmap/1.7", "curl/8.0",
           "Yahoo! Slurp", "parrotsec", "caf\u00e9-agent", "S3Scanner", "aws-cli/2.15.0 kalix"]
    events = [rulekit.ev(at=i, user_agent=ua, requester=f"arn:aws:iam::123456789012:user/{uas.index(ua)}")
              for i, ua in enumerate(uas * 3)]
    findings = assert_same(events, 7)
    raised = {f.dedup_key.rsplit("/", 1)[1] for f in findings if f.rule_id == "s3.pentest_user_agent"}
    assert {"0", "1", "2", "3"} <= raised and not {"4", "5", "7"} & raised


@pytest.mark.parametrize("batch", [3, 50])
def test_policy_changes_of_access_logs_parse_no_line(batch):
    """Policy and ACL changes and bucket deletions in access logs (no request body) are decided per
    dictionary code (their hits: the change, ``body_logged`` False): no event is made for them, only
    for the CloudTrail rows beside them (a policy made public: severity high) and the control
    operations another rule matches in Python; the findings are the event path's, details too."""
    public = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::acme-data/*"}]}
    evs = []
    for i in range(40):
        op = ("REST.PUT.BUCKETPOLICY", "REST.PUT.ACL", "REST.DELETE.BUCKET", "REST.PUT.VERSIONING")[i % 4]
        evs.append(rulekit.ev(op, key=None, at=i * 90.0, http_status=204 if i % 5 else 403,
                              requester=f"arn:aws:iam::123456789012:user/p{i % 3}"))
        evs.append(rulekit.ev("REST.PUT.ACL", key=f"obj/{i}", at=i * 90.0 + 0.5, http_status=200))   # PutObjectAcl
        if i % 10 == 4:
            evs.append(rulekit.ct("PutBucketPolicy", {"bucketName": "acme-data", "bucketPolicy": public},
                                  at=i * 90.0 + 1))
    engine = RuleEngine({})
    dicts = columns.Dicts()
    calls = 0
    for i in range(0, len(evs), batch):
        b = PlainBatch(from_events(evs[i:i + batch], dicts))
        engine.process_columns(b)
        calls += b.event_calls
    engine.flush()
    found = engine.findings()
    assert fingerprint(found) == fingerprint(by_events(evs, batch).findings())
    changes = [f for f in found if f.rule_id == "s3.bucket_policy_change"]
    assert {"s3.bucket_policy_change", "s3.bucket_deleted"} <= {f.rule_id for f in found}
    assert any(f.details.get("made_public") and f.severity == "high" for f in changes)
    assert any(f.details.get("body_logged") is False and f.details["change"] == "PutBucketAcl" for f in changes)
    assert not any(f.details.get("change") == "PutObjectAcl" for f in changes)
    cloudtrail = sum(e.source == "cloudtrail" for e in evs)
    versioning = sum(e.operation == "REST.PUT.VERSIONING" for e in evs)
    assert calls <= 4 * cloudtrail + versioning < 40


def details_traffic(seed: int) -> list[Event]:
    """Access-log rows only (no CloudTrail: every hit a fast one) whose hits carry details: log objects
    deleted and overwritten (a busy actor past the 20 keys a finding lists, over several dedup periods;
    a few others) and policy/ACL changes by a few people, in time order."""
    rnd = random.Random(seed)
    out = []
    for i in range(2400):
        at = i * 9.0
        out.append(rulekit.ev(rnd.choice(["REST.DELETE.OBJECT", "REST.PUT.OBJECT"]), LOGS + f"{i % 37}.json.gz",
                              at=at, bucket="acme-logs", http_status=204))
        if i % 7 == 0:
            out.append(rulekit.ev("BATCH.DELETE.OBJECT", LOGS + f"x{i}.gz", at=at + 1, bucket="acme-logs",
                                  requester=rulekit.OTHER, remote_ip=f"192.0.2.{rnd.randrange(5)}"))
        if i % 11 == 0:
            out.append(rulekit.ev(rnd.choice(["REST.PUT.BUCKETPOLICY", "REST.PUT.ACL", "REST.DELETE.CORS"]), None,
                                  at=at + 2, requester=f"arn:aws:iam::123456789012:user/p{rnd.randrange(3)}"))
    return out


@pytest.mark.parametrize("batch", [1, 40, 700, 10000])
def test_bulk_hits_with_details(batch, monkeypatch):
    """s3.log_tampering (its keys and log-object count) and s3.bucket_policy_change (the change,
    ``body_logged`` False) on access-log rows go through the bulk path: segments of a batch, joins of
    later batches merged hit by hit, no light row through _take when the rows are in order; out of
    order, the groups it cannot decide take the row-by-row code with the same hits. The event path's
    findings, details included."""
    from s3tail.core.rules.vector import ColumnRunner
    rules = {"s3.log_tampering", "s3.bucket_policy_change"}
    events = details_traffic(batch)
    shuffled = events[:]
    random.Random(batch).shuffle(shuffled)
    for evs in (events, shuffled):
        findings = by_events(evs, batch).findings()
        bulk = count_calls(monkeypatch, ColumnRunner, "run_single")
        taken = count_calls(monkeypatch, RuleEngine, "_take")
        assert fingerprint(by_columns(evs, batch).findings()) == fingerprint(findings)
        monkeypatch.undo()
        assert rules <= set(bulk)
        mine = [f for f in findings if f.rule_id in rules]
        assert {f.rule_id for f in mine} == rules
        assert all(f.details["body_logged"] is False and f.details["change"] for f in mine
                   if f.rule_id == "s3.bucket_policy_change")
        if evs is events:
            assert not rules & set(taken)
            busy = max((f for f in mine if f.rule_id == "s3.log_tampering"), key=lambda f: f.count)
            assert busy.count > 60 and len(busy.details["keys"]) == 4 * MAX_SAMPLES == 20
            assert busy.details["log_objects"] == busy.count
    assert rules & set(taken)   # (shuffled: late rows)


def test_process_columns_without_report(generated):
    """``report=False`` (the ingest, ``s3tail scan``): every call returns an empty list and the findings
    are those of a reporting engine, which lists what each batch touched (the event path's)."""
    quiet, loud = RuleEngine({}), RuleEngine({})
    dicts = columns.Dicts()
    listed = 0
    for i in range(0, len(generated), 4000):
        b = from_events(generated[i:i + 4000], dicts)
        assert quiet.process_columns(b, report=False) == []
        listed += len(loud.process_columns(b))
    quiet.flush(), loud.flush()
    assert listed >= len(loud.findings()) > 100
    assert fingerprint(quiet.findings()) == fingerprint(loud.findings())
