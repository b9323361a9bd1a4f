#!/usr/bin/env bash
# s3tail against GoAccess and lnav on the same generated file, in the same run.
#
#   bench/vs_peers.sh [LINES] [RUNS]        (default 1000000 lines, 3 runs each)
#
# Installs goaccess and lnav with apt-get when missing (as root), generates LINES lines with
# ../shared/tools/gen_s3_access_logs.py --seed 1 (bench/data/, once), installs the lnav format for current
# S3 lines (../shared/tools/lnav-s3-access-format.json), then times, interleaved, RUNS times each:
#   goaccess   FILE --log-format=AWSS3 -o report.json
#   lnav index FILE: lnav -n -c ';SELECT count(*) FROM s3_access_v3'
#   lnav aggregate : lnav -n -c ';SELECT bucket, sc_status, count(*), sum(sc_bytes), count(DISTINCT cs_userid)
#                                   FROM s3_access_v3 GROUP BY bucket, sc_status'
#   s3tail ingest  : read + parse + all default rules + columnar store (s3tail.core.ingest.ingest)
# and prints medians, min-max and the ratios s3tail / peer (below 1.0: s3tail is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
RUNS=${2:-3}

for tool in goaccess lnav; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get install -y -qq "$tool" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$tool"; }
    else
      echo "vs_peers: $tool missing and not root (apt-get install -y goaccess lnav)" >&2
      exit 2
    fi
  fi
done
mkdir -p "$HOME/.config/lnav/formats/installed"
cp ../shared/tools/lnav-s3-access-format.json "$HOME/.config/lnav/formats/installed/s3_access_v3.json"

exec python - "$LINES" "$RUNS" <<'PY'
import os, statistics, subprocess, sys, tempfile, time
sys.path.insert(0, "bench")
import common

lines, runs = int(sys.argv[1]), int(sys.argv[2])
common.header("s3tail vs GoAccess and lnav, same file, same run", f"bench/vs_peers.sh {lines} {runs}")
path = str(common.data_file(lines))
size = os.path.getsize(path) / 1e6
ver = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
print(f"file: {path} ({lines:,} lines, {size:.0f} MB); {ver(['goaccess', '-V'])}; {ver(['lnav', '-V'])}")
out = tempfile.mkdtemp(prefix="s3tail-peers-")
AGG = ("SELECT bucket, sc_status, count(*), sum(sc_bytes), count(DISTINCT cs_userid) "
       "FROM s3_access_v3 GROUP BY bucket, sc_status")
cmds = {
    "goaccess": ["goaccess", path, "--log-format=AWSS3", "-o", os.path.join(out, "report.json")],
    "lnav index": ["lnav", "-n", "-c", ";SELECT count(*) FROM s3_access_v3", path],
    "lnav aggregate": ["lnav", "-n", "-c", ";" + AGG, path],
    "s3tail ingest": [sys.executable, "bench/ingest.py", "--worker", "auto", path],
}
times = {k: [] for k in cmds}
notes = {}
for _ in range(runs):
    for name, cmd in cmds.items():
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True)
        times[name].append(time.perf_counter() - t0)
        if res.returncode:
            sys.exit(f"{name} failed ({res.returncode}): {res.stderr[-500:]}")
        notes[name] = res.stdout.strip().splitlines()[-1][:160] if res.stdout.strip() else ""
print()
for name, cmd in cmds.items():
    print(f"{name:15s} s: {common.spread(times[name])}   {lines / statistics.median(times[name]):>10,.0f} lines/s")
    print(f"{'':15s} $ {' '.join(cmd)[:150]}")
    if notes[name]:
        print(f"{'':15s} last line: {notes[name]}")
s3 = statistics.median(times["s3tail ingest"])
print()
for peer in ("goaccess", "lnav index", "lnav aggregate"):
    print(f"ratio s3tail ingest / {peer:15s} = {s3 / statistics.median(times[peer]):.2f}")
print("targets: / lnav aggregate <= 1.0 (aim 0.5 of lnav index time), / goaccess <= 0.25")
print(f"load average at end: {common.load()}")
PY
