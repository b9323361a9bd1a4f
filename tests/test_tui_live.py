"""The app on an S3 log bucket served by moto over real HTTP: rows arrive from the bucket, and the
Posture tab is collected live (in a worker) for the log bucket and the buckets its logs are about."""
from __future__ import annotations

import urllib.request

import boto3
import pytest

from s3tail.core.demo import DemoTraffic
from s3tail.tui.app import S3tailApp, prepare
from s3tail.tui.testing import wait_until
from s3tail.tui.widgets import PostureView

EPOCH = 1_767_225_600


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    none = str(tmp_path_factory.mktemp("aws") / "none")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                           "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": none,
                           "AWS_SHARED_CREDENTIALS_FILE": none}.items():
            mp.setenv(key, value)
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(key, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10)
        try:
            yield url
        finally:
            urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10)
            server.stop()


async def test_s3_source_rows_and_live_posture(moto_url):
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    for bucket in ("tui-log-bucket", "acme-prod-data"):
        s3.create_bucket(Bucket=bucket)
    lines = [line for line in DemoTraffic(seed=9, episode_every=10_000).lines(60, EPOCH)
             if " acme-prod-data " in line]
    s3.put_object(Bucket="tui-log-bucket", Key="s3/2026-01-01-00-00-00-0123456789ABCDEF",
                  Body=("\n".join(lines) + "\n").encode())
    args, config, results = prepare(["--no-follow", "--no-state", "--endpoint-url", moto_url,
                                     "s3://tui-log-bucket/s3/"])
    app = S3tailApp(args, config, results)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(app.store) == len(lines), timeout=20, what="rows from S3")
        assert {app.store.get(p).bucket for p in range(len(app.store))} == {"acme-prod-data"}
        view = app.q(PostureView)
        await wait_until(pilot, lambda: view.results, timeout=30, what="live posture results")
        buckets = {r["bucket"] for r in view.results}
        assert {"tui-log-bucket", "acme-prod-data"} <= buckets
        assert "live, 2 bucket(s)" in view.message
        await pilot.press("3")
        assert app.q("#tabs").active == "posture"
        assert "s3://tui-log-bucket/s3/" in str(app.q("#status").render())
