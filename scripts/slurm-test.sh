#!/usr/bin/env bash
# Sharded runs on a real Slurm: a one-node cluster started here, as root,
# without systemd (munged, slurmctld, slurmd under a work folder), then:
#
#   1. `plan` a generated corpus (200+ photos: duplicates, a corrupt file,
#      PNGs that must be re-encoded), `keygen` a key;
#   2. `sbatch --wait --array=0-3` of `clean --shard $SLURM_ARRAY_TASK_ID/4`,
#      a dependent `merge` job, and a byte-for-byte comparison of OUT and the
#      merged map with a single-machine `clean` using the same key;
#   3. the same with `--shard auto`; a partial array refused by `--shard auto`;
#   4. one task killed (SIGKILL) mid-run: `merge` exits 1 naming exactly the
#      unfinished chunks (and RUN/missing.txt); resubmitting only those
#      (`--array=<missing> ... --chunks $SLURM_ARRAY_TASK_ID`) completes the
#      run and the comparison holds again.
#
#   bash scripts/slurm-test.sh        (root; installs slurm-wlm and munge with apt when missing)
#
# Environment: PHOTODEID=path (default: target/debug/photodeid, built if
# missing), SLURM_TEST_KEEP=1 keeps the work folder. The daemons it started
# are stopped by PID on exit. Last line: `N passed, N failed`; exit 1 on any failure.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
check() {
  local what="$1"
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ] && [ "$PASS" -gt 0 ]
  exit $?
}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm-test: installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 slurm-wlm munge >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } ||
    { bad "apt-get install slurm-wlm munge"; finish; }
fi
for t in slurmctld slurmd munged sbatch python3; do
  command -v "$t" >/dev/null || { bad "$t is installed"; finish; }
done
if [ "$(id -u)" != 0 ]; then
  bad "runs as root (slurmd must start jobs)"
  finish
fi

PHOTODEID="${PHOTODEID:-$ROOT/target/debug/photodeid}"
if [ ! -x "$PHOTODEID" ]; then
  cargo build --quiet --bin photodeid || { bad "cargo build"; finish; }
fi
PHOTODEID="$(readlink -f "$PHOTODEID")"

W="$(mktemp -d /tmp/photodeid-slurm.XXXXXX)"
chmod 755 "$W" # munged wants its socket's folders searchable
PIDS=()
stop() {
  # Only what this script started, by PID, newest first.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local f="${PIDS[$i]}"
    [ -f "$f" ] || continue
    local pid
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then echo "work folder kept: $W"; else rm -rf "$W"; fi
}
trap stop EXIT

# --- the cluster -------------------------------------------------------
read -r CTLD_PORT SLURMD_PORT < <(python3 -c '
import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
NODE="$(hostname -s)"
CPUS="$(nproc)"
mkdir -p "$W/state" "$W/spool"
head -c 1024 /dev/urandom >"$W/munge.key"
chmod 400 "$W/munge.key"
munged -f --socket="$W/munge.sock" --key-file="$W/munge.key" --log-file="$W/munged.log" \
  --pid-file="$W/munged.pid" --seed-file="$W/munged.seed" || { bad "munged starts"; finish; }
PIDS+=("$W/munged.pid")
cat >"$W/slurm.conf" <<EOF
ClusterName=photodeid-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
AuthType=auth/munge
AuthInfo=socket=$W/munge.sock
CredType=cred/munge
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"
slurmctld -f "$SLURM_CONF" || { bad "slurmctld starts"; finish; }
for _ in $(seq 50); do [ -s "$W/slurmctld.pid" ] && break; sleep 0.1; done
PIDS+=("$W/slurmctld.pid")
slurmd -f "$SLURM_CONF" -N "$NODE" || { bad "slurmd starts"; finish; }
for _ in $(seq 50); do [ -s "$W/slurmd.pid" ] && break; sleep 0.1; done
PIDS+=("$W/slurmd.pid")
up=0
for _ in $(seq 100); do
  if sinfo -h -o %t 2>/dev/null | grep -qx idle; then up=1; break; fi
  sleep 0.1
done
check "one-node cluster is up (munged, slurmctld, slurmd)" [ "$up" = 1 ]
[ "$up" = 1 ] || { tail -n 20 "$W"/slurm*.log; finish; }

# --- the corpus --------------------------------------------------------
IN="$W/archive"
for i in $(seq 0 8); do
  mkdir -p "$IN/case-$i"
  for f in "$ROOT"/fixtures/dirty/*; do
    # Unique bytes per copy (trailing data: cleaned away, keyed name differs).
    { cat "$f"; printf 'copy %s' "$i"; } >"$IN/case-$i/$(basename "$f")"
  done
done
mkdir -p "$IN/case-dup"
# Exact duplicates of other cases' photos: one keyed name, one output, two map rows.
cp "$IN"/case-0/*.jpg "$IN/case-dup/"
for f in "$IN"/case-1/*.jpg; do cp "$f" "$IN/case-dup/again-$(basename "$f")"; done
printf 'not a photo' >"$IN/case-dup/corrupt.jpg"
FILES="$(find "$IN" -type f | wc -l)"
check "corpus of $FILES files (200+)" [ "$FILES" -ge 200 ]

KEY="$W/name.key"
"$PHOTODEID" keygen "$KEY" 2>/dev/null
check "keygen makes a 0600 key" [ "$(stat -c %a "$KEY")" = 600 ]

# The single-machine reference, same key, flat as manifest runs name files
# (a chunk cannot rank a whole case folder).
mkdir -p "$W/single"
(cd "$W/single" && "$PHOTODEID" clean "$IN" -o out --name-key "$KEY" --map map.csv --flat -q 2>/dev/null)
check "single-machine run: the corrupt file fails (exit 1), the rest cleaned" [ $? = 1 ]
check "single-machine run re-encoded some photos" \
  bash -c "(cd '$W/single' && '$PHOTODEID' clean '$IN' -o out2 --name-key '$KEY' --json 2>/dev/null) | grep -q '\"method\":\"reencoded\"'"
rm -rf "$W/single/out2"

same_as_single() { # run folder
  diff -r "$1/out" "$W/single/out" >/dev/null && cmp -s "$1/run/map.csv" "$W/single/map.csv"
}

# Job scripts: one per way of choosing the share.
cat >"$W/clean-k.sh" <<EOF
#!/bin/bash
exec "$PHOTODEID" clean --manifest run/manifest.tsv --run-dir run -o out --name-key "$KEY" --shard \$SLURM_ARRAY_TASK_ID/4
EOF
cat >"$W/clean-auto.sh" <<EOF
#!/bin/bash
exec "$PHOTODEID" clean --manifest run/manifest.tsv --run-dir run -o out --name-key "$KEY" --shard auto
EOF
cat >"$W/clean-chunks.sh" <<EOF
#!/bin/bash
exec "$PHOTODEID" clean --manifest run/manifest.tsv --run-dir run -o out --name-key "$KEY" --chunks \$SLURM_ARRAY_TASK_ID
EOF
# Task KILL_TASK is killed with SIGKILL once its first chunk is done.
cat >"$W/clean-killed.sh" <<EOF
#!/bin/bash
if [ "\$SLURM_ARRAY_TASK_ID" != "\$KILL_TASK" ]; then
  exec "$PHOTODEID" clean --manifest run/manifest.tsv --run-dir run -o out --name-key "$KEY" --shard \$SLURM_ARRAY_TASK_ID/4
fi
"$PHOTODEID" clean --manifest run/manifest.tsv --run-dir run -o out --name-key "$KEY" --shard \$SLURM_ARRAY_TASK_ID/4 -j 1 &
pid=\$!
while kill -0 \$pid 2>/dev/null; do
  for c in \$(seq \$SLURM_ARRAY_TASK_ID 4 1000); do
    [ -e run/chunks/\$c.done.json ] && { kill -9 \$pid; echo "killed after chunk \$c"; exit 9; }
  done
done
echo "finished before it could be killed"
EOF
cat >"$W/merge.sh" <<EOF
#!/bin/bash
"$PHOTODEID" merge --run-dir run --verify
echo \$? > merge.rc
EOF
chmod +x "$W"/*.sh

new_run() { # name
  mkdir -p "$W/$1"
  (cd "$W/$1" && "$PHOTODEID" plan "$IN" -o run/manifest.tsv --chunk-size 10 -q)
}

array_then_merge() { # name script [array]
  local jid
  jid="$(sbatch --parsable --chdir="$W/$1" -c 1 --array="${3:-0-3}" -o "$W/$1/task-%a.log" "$W/$2")" || return 1
  sbatch --wait --chdir="$W/$1" --dependency="afterany:$jid" -o "$W/$1/merge.log" "$W/merge.sh" >/dev/null
}

# --- 2. --shard K/4, dependent merge -------------------------------------
new_run a
check "plan wrote a private manifest" [ "$(stat -c %a "$W/a/run/manifest.tsv")" = 600 ]
NCHUNKS="$(grep -c -v '^#' "$W/a/run/manifest.tsv")"
NCHUNKS=$(((NCHUNKS + 9) / 10))
array_then_merge a clean-k.sh
check "--shard K/4 array: every chunk has a done marker" [ "$(ls "$W/a/run/chunks/"*.done.json | wc -l)" = "$NCHUNKS" ]
check "a task got the CPUs Slurm granted (-c 1: one thread)" grep -q " 1 thread(s)" "$W/a/task-0.log"
check "dependent merge job exits 0" [ "$(cat "$W/a/merge.rc" 2>/dev/null)" = 0 ]
check "K/4 run: OUT and the merged map equal the single-machine run byte for byte" same_as_single "$W/a"
check "task logs carry no original path" bash -c "! grep -l -e '$IN' -e 'case-' -e 'jpeg_' '$W'/a/task-*.log"

# --- 3. --shard auto, and a partial array refused --------------------------
new_run b
array_then_merge b clean-auto.sh
check "--shard auto logs its source" grep -q "from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT" "$W/b/task-1.log"
check "--shard auto run: merge exits 0" [ "$(cat "$W/b/merge.rc" 2>/dev/null)" = 0 ]
check "--shard auto run: equal to the single-machine run" same_as_single "$W/b"
new_run p
sbatch --wait --chdir="$W/p" --array=1,3 -o "$W/p/task-%a.log" "$W/clean-auto.sh" >/dev/null
check "--shard auto refuses a partial array (--array=1,3)" grep -q "stepped or partial" "$W/p/task-3.log"
check "... and does nothing" [ ! -e "$W/p/out" ]

# --- 4. a task killed mid-run, then only the missing chunks resubmitted -----
new_run c
export KILL_TASK=2
array_then_merge c clean-killed.sh
check "task 2 was killed mid-run" grep -q "killed after chunk" "$W/c/task-2.log"
check "merge after the kill exits 1" [ "$(cat "$W/c/merge.rc" 2>/dev/null)" = 1 ]
expected="$(python3 - "$W/c/run/chunks" "$NCHUNKS" <<'EOF'
import os, sys
done = {int(n.split(".")[0]) for n in os.listdir(sys.argv[1]) if n.endswith(".done.json")}
ids = [c for c in range(int(sys.argv[2])) if c not in done]
out, i = [], 0
while i < len(ids):
    j = i
    while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
        j += 1
    out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
    i = j + 1
print(",".join(out))
EOF
)"
missing="$(cat "$W/c/run/missing.txt" 2>/dev/null)"
check "missing.txt names exactly the unfinished chunks ($missing)" [ -n "$missing" ] && [ "$missing" = "$expected" ]
check "merge's log lists them in Slurm array syntax" grep -q "missing: $expected " "$W/c/merge.log"
mv "$W/c/merge.rc" "$W/c/merge-1.rc"
array_then_merge c clean-chunks.sh "$missing"
check "resubmitting only the missing chunks: merge exits 0" [ "$(cat "$W/c/merge.rc" 2>/dev/null)" = 0 ]
check "after the resubmission: equal to the single-machine run" same_as_single "$W/c"

finish
