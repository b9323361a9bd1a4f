"""Attack episodes in generated benign background: each raises its rule for the right actor, and no
benign actor raises a windowed rule (the issue's held-out check, on a modest background)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "rules"))
import episodes as ep  # noqa: E402

from s3tail.core.event import Event  # noqa: E402
from s3tail.core.reader import iter_sources  # noqa: E402
from s3tail.core.rules import RuleEngine  # noqa: E402

from conftest import SHARED  # noqa: E402

GENERATOR = SHARED / "tools" / "gen_s3_access_logs.py"
WINDOWED = {"s3.object_access_errors", "s3.enumeration", "s3.mass_download", "s3.mass_delete"}


@pytest.fixture(scope="module")
def background(tmp_path_factory) -> tuple[str, float, float]:
    if not GENERATOR.is_file():
        pytest.skip(f"{GENERATOR} absent: ../shared is only beside clones inside the workspace")
    text = subprocess.run([sys.executable, str(GENERATOR), "--lines", "30000", "--seed", "5"], check=True,
                          capture_output=True, text=True).stdout
    path = tmp_path_factory.mktemp("bg") / "background.log"
    path.write_text(text, encoding="utf-8")
    times = [e.ts for e in iter_sources([str(path)]) if type(e) is Event]
    return text, min(times), max(times)


def episodes(t0: float, t1: float) -> list[tuple[str, str, list[str]]]:
    at = lambda frac: t0 + (t1 - t0) * frac  # noqa: E731
    return [
        ep.mass_download_objects(at(0.10), "arn:aws:iam::999988887777:user/exfil", "198.51.100.66"),
        ep.mass_download_objects(at(0.55), None, "203.0.113.77"),               # anonymous, unknown IP
        ep.mass_download_bytes(at(0.30), "arn:aws:sts::123456789012:assumed-role/sagemaker-exec/stolen",
                               "198.51.100.90"),
        ep.enumeration(at(0.40), None, "203.0.113.50"),
        ep.enumeration(at(0.80), "arn:aws:iam::444455556666:user/recon", "198.51.100.12"),
        ep.access_errors(at(0.20), "arn:aws:iam::123456789012:user/intruder", "198.51.100.31"),
        # a busy background role (thousands of requests elsewhere) denied on a bucket it probes
        ep.access_errors(at(0.70), "arn:aws:sts::123456789012:assumed-role/glue-etl-role/GlueJobRunnerSession",
                         "10.1.2.3", bucket="acme-terraform-state"),
        ep.mass_delete(at(0.65), "arn:aws:iam::123456789012:user/deploy-bot", "198.51.100.44"),  # known actor
        ep.mass_delete(at(0.90), "arn:aws:sts::123456789012:assumed-role/GitHubActionsDeploy/wiper",
                       "198.51.100.45"),
    ]


def scan(path: Path, config: dict | None = None) -> list:
    engine = RuleEngine(config or {})
    batch: list = []
    for item in iter_sources([str(path)]):
        if type(item) is Event:
            batch.append(item)
            if len(batch) == 2000:
                engine.process_batch(batch)
                batch = []
    engine.process_batch(batch)
    engine.flush()
    return engine.findings()


@pytest.mark.parametrize("placement", ["appended", "prepended"])
def test_episodes_raise_their_rule_and_benign_actors_none(background, tmp_path, placement):
    text, t0, t1 = background
    eps = episodes(t0, t1)
    extra = "".join(line + "\n" for _, _, lines in eps for line in lines)
    path = tmp_path / "mixed.log"
    # late log objects (appended) and early ones (prepended): out of order relative to the background
    path.write_text(text + extra if placement == "appended" else extra + text, encoding="utf-8")
    findings = scan(path)
    windowed = [f for f in findings if f.rule_id in WINDOWED]
    raised = {(f.rule_id, f.actor) for f in windowed}
    for rule_id, actor, _ in eps:
        assert (rule_id, actor) in raised, f"{rule_id} not raised for {actor}"
    episode_actors = {actor for _, actor, _ in eps}
    benign = sorted({(f.rule_id, f.actor) for f in windowed if f.actor not in episode_actors})
    assert not benign, f"benign actors raised windowed rules: {benign}"


def test_benign_background_alone_raises_no_windowed_rule(background, tmp_path):
    text, _, _ = background
    path = tmp_path / "benign.log"
    path.write_text(text, encoding="utf-8")
    assert not [f for f in scan(path) if f.rule_id in WINDOWED]


def test_suppressions_are_configurable(background, tmp_path):
    """With the suppressions off, the same benign traffic is noisy again (so they do the work)."""
    text, _, _ = background
    path = tmp_path / "benign.log"
    path.write_text(text, encoding="utf-8")
    off = {"rules": {"s3.object_access_errors": {"min_error_share": 0, "skip_services": False},
                     "s3.enumeration": {"min_error_share": 0, "skip_services": False},
                     "s3.mass_download": {"object_cap": 0, "skip_services": False}}}
    noisy = {f.rule_id for f in scan(path, off)}
    assert {"s3.object_access_errors", "s3.mass_download"} <= noisy
