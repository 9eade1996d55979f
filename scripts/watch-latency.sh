#!/usr/bin/env bash
# Benchmark of `photodeid watch` (release build):
#   1. latency from a file's close to its cleaned copy being visible in the
#      outbox, for a 12 MP JPEG on the lossless path (target: settle + 200 ms);
#   2. burst throughput of the watcher (live, and --once) against
#      `photodeid clean` on the same files (target: within 20 %).
#
#   bash scripts/watch-latency.sh            (no arguments; run from anywhere)
#
# Environment overrides:
#   PHOTO=path        the 12 MP JPEG (default: the corpus photo below, else a
#                     synthetic 4000x3000 JPEG made with python3 + cjpeg)
#   SETTLE=500ms      --settle of the watcher
#   LATENCY_RUNS=10   files dropped one at a time for the latency figure
#   BURST_FILES=48    files in the burst
#   PHOTODEID=path    binary (default target/release/photodeid, built if missing)
#   WORK=dir          scratch folder (default target/bench-work/watch)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PHOTO="${PHOTO:-/work/shared/corpus/exif-samples/jpg/tests/42_IndexError.jpg}"
SETTLE="${SETTLE:-500ms}"
LATENCY_RUNS="${LATENCY_RUNS:-10}"
BURST_FILES="${BURST_FILES:-48}"
PHOTODEID="${PHOTODEID:-target/release/photodeid}"
WORK="${WORK:-target/bench-work/watch}"

if [[ "$PHOTODEID" == target/release/photodeid ]]; then
    cargo build --release --quiet
fi
rm -rf "$WORK"
mkdir -p "$WORK"
if [[ ! -f "$PHOTO" ]]; then
    PHOTO="$WORK/synthetic.jpg"
    python3 - "$WORK/synthetic.ppm" <<'PY'
import sys, random
w, h = 4000, 3000
random.seed(1)
row = bytearray()
with open(sys.argv[1], "wb") as f:
    f.write(b"P6 %d %d 255\n" % (w, h))
    for y in range(h):
        f.write(bytes((x * 255 // w + random.randrange(16)) & 255 for x in range(w * 3)))
PY
    cjpeg -quality 90 "$WORK/synthetic.ppm" > "$PHOTO"
fi

python3 - "$PHOTODEID" "$PHOTO" "$SETTLE" "$LATENCY_RUNS" "$BURST_FILES" "$WORK" <<'PY'
import os, subprocess, sys, time, statistics, shutil, signal

exe, photo, settle, runs, burst, work = sys.argv[1:7]
exe = os.path.abspath(exe)
runs, burst = int(runs), int(burst)
settle_s = float(settle[:-2]) / 1000 if settle.endswith("ms") else float(settle.rstrip("s"))
base = open(photo, "rb").read()

def variant(i):
    # Distinct originals (distinct pseudonyms), same cleaning work: a
    # trailer after EOI, which photodeid strips.
    return base + b"bench-variant-%d" % i

def fresh(name):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d

def start_watcher(root, extra=()):
    inbox = os.path.join(root, "inbox")
    os.makedirs(inbox, exist_ok=True)
    log = open(os.path.join(root, "log.txt"), "w")
    p = subprocess.Popen([exe, "watch", inbox, "-o", os.path.join(root, "out"), "-q",
                          "--settle", settle, *extra], stderr=log)
    time.sleep(0.5)
    return p, inbox, os.path.join(root, "out")

def stop(p):
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0

def listing(d):
    try:
        return [n for n in os.listdir(d) if not n.startswith(".")]
    except FileNotFoundError:
        return []

print(f"photo: {photo} ({len(base)/1e6:.1f} MB), settle {settle}, {os.cpu_count()} cores")

# 1. Latency, one file at a time.
root = fresh("latency")
p, inbox, out = start_watcher(root)
lat = []
for i in range(runs):
    before = len(listing(out))
    fd = os.open(os.path.join(inbox, f"photo{i}.jpg"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.write(fd, variant(i))
    os.close(fd)
    t_close = time.monotonic()
    while len(listing(out)) == before:
        time.sleep(0.001)
    lat.append(time.monotonic() - t_close)
    time.sleep(0.2)
stop(p)
over = [l - settle_s for l in lat]
print(f"latency close->visible over {runs} files: median {statistics.median(lat)*1000:.0f} ms, "
      f"max {max(lat)*1000:.0f} ms; above settle: median {statistics.median(over)*1000:.0f} ms, "
      f"max {max(over)*1000:.0f} ms (target <= 200 ms)")

# 2. Burst throughput on the same files.
src = fresh("burst-src")
for i in range(burst):
    with open(os.path.join(src, f"p{i:03}.jpg"), "wb") as f:
        f.write(variant(1000 + i))
subprocess.run(["sync"])

def timed(cmd):
    t = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t

def best(f, n=3):
    return min(f() for _ in range(n))

def clean_run(extra):
    def go():
        o = fresh("clean-out")
        return timed([exe, "clean", src, "-o", o, "-q", *extra])
    return go

def clean_then_sync():
    o = fresh("clean-out")
    subprocess.run(["sync"])
    t = time.monotonic()
    subprocess.run([exe, "clean", src, "-o", o, "-q"], check=True)
    subprocess.run(["sync"])  # the same data on disk as the watcher leaves
    return time.monotonic() - t

def once_run():
    root = fresh("once")
    shutil.copytree(src, os.path.join(root, "inbox"), copy_function=os.link)
    # The backlog is watched for the settle time before any work starts.
    return timed([exe, "watch", os.path.join(root, "inbox"), "-o", os.path.join(root, "out"),
                  "-q", "--once", "--settle", settle]) - settle_s

def live_run():
    root = fresh("live")
    staging = os.path.join(root, "staging")
    shutil.copytree(src, staging, copy_function=os.link)
    p, inbox, out = start_watcher(root)
    t = time.monotonic()
    for n in sorted(os.listdir(staging)):
        os.rename(os.path.join(staging, n), os.path.join(inbox, n))
    while len(listing(out)) < burst:
        time.sleep(0.02)  # coarse: a busy poller would steal CPU from the watcher
    el = time.monotonic() - t
    stop(p)
    return el - settle_s

res = {
    "clean": best(clean_run([])),
    "clean --sync": best(clean_run(["--sync"])),
    "clean, then sync(1)": best(clean_then_sync),
    "watch --once (minus settle)": best(once_run),
    "watch (live burst, minus settle)": best(live_run),
}
ref = res["clean"]
print(f"burst of {burst} files:")
for k, v in res.items():
    print(f"  {k:36} {v:6.2f} s  {burst/v:6.1f} files/s  {v/ref*100:5.0f} % of clean's time")
PY
