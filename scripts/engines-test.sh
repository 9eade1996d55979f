#!/usr/bin/env bash
# The job scripts of docs/cluster.md for the engines CI cannot start
# (Kubernetes Indexed Job, AWS Batch array, GNU parallel, Spark `pipe`), run
# on this machine exactly as written there: each recipe's command is taken
# from the docs, its absolute paths are mapped under a work folder, the
# engine's environment (JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX) or
# its scheduling (parallel, Spark's map over chunk ids and its pipe of path
# partitions) is reproduced, then `merge` and a byte-for-byte comparison with
# a single-machine `clean` using the same key. Slurm has its own real-cluster
# test (scripts/slurm-test.sh).
#
#   bash scripts/engines-test.sh      (installs GNU parallel with apt when missing)
#
# Environment: PHOTODEID=path (default: target/debug/photodeid, built if
# missing), ENGINES_TEST_KEEP=1 keeps the work folder. Last line:
# `N passed, N failed`; exit 1 on any failure.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
DOC="$ROOT/docs/cluster.md"
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

if ! command -v parallel >/dev/null; then
  echo "engines-test: installing GNU parallel"
  if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=600 parallel >/dev/null ||
    { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq parallel >/dev/null; } ||
    { bad "apt-get install parallel"; finish; }
fi
for t in parallel python3; do
  command -v "$t" >/dev/null || { bad "$t is installed"; finish; }
done

PHOTODEID="${PHOTODEID:-$ROOT/target/debug/photodeid}"
if [ ! -x "$PHOTODEID" ]; then
  cargo build --quiet --bin photodeid || { bad "cargo build"; finish; }
fi
PHOTODEID="$(readlink -f "$PHOTODEID")"

W="$(mktemp -d /tmp/photodeid-engines.XXXXXX)"
cleanup() {
  if [ "${ENGINES_TEST_KEEP:-0}" = 1 ]; then echo "work folder kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
# The recipes call `photodeid` from the PATH, as an installed package would.
mkdir -p "$W/bin"
ln -s "$PHOTODEID" "$W/bin/photodeid"
export PATH="$W/bin:$PATH"

# --- the corpus and the single-machine reference ------------------------
IN="$W/archive"
for i in $(seq 0 5); do
  mkdir -p "$IN/case-$i"
  for f in "$ROOT"/fixtures/dirty/*; do
    { cat "$f"; printf 'copy %s' "$i"; } >"$IN/case-$i/$(basename "$f")"
  done
done
printf 'not a photo' >"$IN/case-0/corrupt.jpg"
FILES="$(find "$IN" -type f | wc -l)"
check "corpus of $FILES files (100+)" [ "$FILES" -ge 100 ]
KEY="$W/name.key"
photodeid keygen "$KEY" 2>/dev/null
# Flat, as manifest runs (and the pipe recipe) name files: no chunk can rank a whole case.
(cd "$W" && photodeid clean "$IN" -o single -q --flat --name-key "$KEY" 2>/dev/null)
check "single-machine run: the corrupt file fails (exit 1), the rest cleaned" [ $? = 1 ]
check "single-machine run wrote an output per good file" [ "$(find "$W/single" -type f | wc -l)" -ge $((FILES - 1)) ]

same_as_single() { diff -r "$1" "$W/single" >/dev/null; }

# Sets up an engine's folder: a copy of the archive and the key where its
# recipe expects them, and a plan.
# engine_root NAME ARCHIVE_PATH KEY_PATH MANIFEST_PATH (paths as in the docs, mapped)
engine_root() {
  local r="$W/$1"
  mkdir -p "$r$(dirname "$2")" "$r$(dirname "$3")" "$r$(dirname "$4")"
  cp -a "$IN" "$r$2"
  cp "$KEY" "$r$3"
  chmod 600 "$r$3"
  photodeid plan "$r$2" -o "$r$4" --chunk-size 7 -q
}
chunks_of() { grep -c -v '^#' "$1" | awk '{print int(($1 + 6) / 7)}'; }

# Extracts from the docs: python3 - SECTION KIND prints JSON (see each use).
doc() {
  python3 - "$DOC" "$@" <<'EOF'
import ast, json, re, sys
doc, section, kind = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(doc).read()
part = text.split("\n## " + section, 1)[1].split("\n## ", 1)[0]
blocks = re.findall(r"```(\w*)\n(.*?)```", part, re.S)
if kind == "yaml-commands":  # every `command: [...]` of the YAML, as JSON lists
    y = next(b for lang, b in blocks if lang == "yaml")
    for m in re.finditer(r"command: (\[.*?\])", y, re.S):
        print(json.dumps(json.loads(m.group(1))))
elif kind == "json-command":  # the job definition's command
    print(json.dumps(json.loads(next(b for lang, b in blocks if lang == "json"))))
elif kind == "overrides-command":  # --container-overrides 'command=[...]'
    sh = "".join(b for lang, b in blocks if lang == "bash")
    print(json.dumps(json.loads(re.search(r"'command=(\[.*?\])'", sh).group(1))))
elif kind == "array-size":
    sh = "".join(b for lang, b in blocks if lang == "bash")
    print(re.search(r"size=(\d+)", sh).group(1))
elif kind == "bash":  # the first bash block, verbatim
    print(next(b for lang, b in blocks if lang == "bash"), end="")
elif kind == "python":  # assignments and call arguments of the python blocks, literal only
    out = {}
    for lang, b in blocks:
        if lang != "python":
            continue
        for node in ast.walk(ast.parse(b)):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                try:
                    out[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "pipe":
                out["pipe"] = ast.literal_eval(node.args[0])
    print(json.dumps(out))
EOF
}

# Maps the recipe's absolute paths under the engine's folder: JSON list -> NUL-separated argv.
argv_of() { # ENGINE_ROOT JSON PREFIX...
  python3 - "$@" <<'EOF'
import json, sys
root, cmd, prefixes = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
for a in cmd:
    if any(a == p or a.startswith(p + "/") for p in prefixes):
        a = root + a
    sys.stdout.write(a + "\0")
EOF
}
run_argv() { # ENGINE_ROOT JSON PREFIX... (the environment passes through)
  local -a argv
  mapfile -d '' argv < <(argv_of "$@")
  "${argv[@]}"
}

# --- Kubernetes Indexed Job ---------------------------------------------
mapfile -t K8S < <(doc "Kubernetes" yaml-commands)
check "docs: the Kubernetes clean and merge Jobs' commands are found" [ "${#K8S[@]}" = 2 ]
R="$W/k8s"
engine_root k8s /data/archive /key/name.key /data/run/manifest.tsv
COMPLETIONS="$(grep -o 'completions: [0-9]*' "$DOC" | head -1 | awk '{print $2}')"
# The pod's command line as written (its manifest path is /data/run/manifest.tsv), one pod per
# index, four at a time, as `parallelism` would run them.
export -f run_argv argv_of
seq 0 $((COMPLETIONS - 1)) | xargs -P 4 -I{} env JOB_COMPLETION_INDEX={} \
  bash -c 'run_argv "$0" "$1" /data /key >"$0/pod-{}.log" 2>&1; echo $? >"$0/pod-{}.rc"' "$R" "${K8S[0]}"
check "Kubernetes: $COMPLETIONS indexed pods ran, each logged its shard source" \
  bash -c "[ \$(grep -l JOB_COMPLETION_INDEX '$R'/pod-*.log | wc -l) = $COMPLETIONS ]"
run_argv "$R" "${K8S[1]}" /data /key >"$R/merge.log" 2>&1
check "Kubernetes: the merge Job exits 0" [ $? = 0 ]
check "Kubernetes: OUT equals the single-machine run byte for byte" same_as_single "$R/data/out"

# --- AWS Batch array ----------------------------------------------------
AWS_CMD="$(doc "AWS Batch" json-command)"
AWS_MERGE="$(doc "AWS Batch" overrides-command)"
SIZE="$(doc "AWS Batch" array-size)"
check "docs: the AWS Batch command, merge override and array size ($SIZE) are found" \
  [ -n "$AWS_CMD" ] && [ -n "$AWS_MERGE" ] && [ "$SIZE" -gt 0 ]
R="$W/aws"
engine_root aws /mnt/efs/archive /mnt/efs/secure/name.key /mnt/efs/run/manifest.tsv
seq 0 $((SIZE - 1)) | xargs -P 4 -I{} env AWS_BATCH_JOB_ARRAY_INDEX={} \
  bash -c 'run_argv "$0" "$1" /mnt/efs >"$0/child-{}.log" 2>&1' "$R" "$AWS_CMD"
check "AWS Batch: $SIZE children ran, each logged its shard source" \
  bash -c "[ \$(grep -l AWS_BATCH_JOB_ARRAY_INDEX '$R'/child-*.log | wc -l) = $SIZE ]"
run_argv "$R" "$AWS_MERGE" /mnt/efs >"$R/merge.log" 2>&1
check "AWS Batch: the dependent merge exits 0" [ $? = 0 ]
check "AWS Batch: OUT equals the single-machine run byte for byte" same_as_single "$R/mnt/efs/out"

# --- GNU parallel over ssh ----------------------------------------------
R="$W/parallel"
mkdir -p "$R/nfs/secure" "$R/nfs/run"
cp -a "$IN" "$R/nfs/archive"
cp "$KEY" "$R/nfs/secure/name.key" && chmod 600 "$R/nfs/secure/name.key"
echo ":" >"$R/nodes.txt" # `:` is this machine, no ssh
SCRIPT="$(doc "GNU parallel" bash)"
check "docs: the GNU parallel recipe is found" grep -q "parallel --sshloginfile" <<<"$SCRIPT"
# N=32 as written; the nodes file names this machine instead of ssh hosts.
(cd "$R" && sed -e "s#/nfs/#$R/nfs/#g" <<<"$SCRIPT" | bash >"$R/run.log" 2>&1)
check "GNU parallel: the recipe (plan, 32 shards, merge) exits 0" [ $? = 0 ]
check "GNU parallel: the job log shows 32 shards, all exit 0" \
  bash -c "[ \$(awk 'NR > 1 && \$7 == 0' '$R/nfs/run/parallel.log' | wc -l) = 32 ]"
check "GNU parallel: OUT equals the single-machine run byte for byte" same_as_single "$R/nfs/out"
check "GNU parallel: the merged map is private" [ "$(stat -c %a "$R/nfs/secure/map.csv")" = 600 ]

# --- Spark: map over chunk ids, then pipe of paths ----------------------
SPARK="$(doc "Spark" python)"
R="$W/spark"
engine_root spark /shared/archive /shared/secure/name.key /shared/run/manifest.tsv
NCH="$(chunks_of "$R/shared/run/manifest.tsv")"
python3 - "$R" "$SPARK" "$NCH" <<'EOF' >"$R/map.log" 2>&1
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
root, spark, nchunks = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
cmd = [root + a if a.startswith("/shared/") else a for a in spark["cmd"]]
# parallelize(range(nchunks), nchunks).map(...): one task per chunk id, retried once as
# speculative execution would (duplicate attempts must agree).
with ThreadPoolExecutor(4) as pool:
    codes = list(pool.map(lambda c: subprocess.run(cmd + [str(c)]).returncode, list(range(nchunks)) * 2))
sys.exit(0 if len(codes) == 2 * nchunks else 1)
EOF
check "Spark map: $NCH chunk tasks ran twice each" [ $? = 0 ]
photodeid merge --run-dir "$R/shared/run" >"$R/merge.log" 2>&1
check "Spark map: merge exits 0" [ $? = 0 ]
check "Spark map: OUT equals the single-machine run byte for byte" same_as_single "$R/shared/out"
rm -rf "$R/shared/out"
find "$IN" -type f | sort >"$R/photos.txt"
python3 - "$R" "$SPARK" "$R/photos.txt" <<'EOF' >"$R/pipe.log" 2>&1
import json, subprocess, sys
root, spark, listing = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
cmd = spark["pipe"].replace("/shared/", root + "/shared/")
paths = open(listing).read().splitlines()
parts = [paths[i::4] for i in range(4)]  # repartition(4)
lines = []
for part in parts:  # RDD.pipe: each partition's lines on the command's stdin
    p = subprocess.run(cmd, shell=True, input="\n".join(part) + "\n", capture_output=True, text=True)
    lines += [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
print(json.dumps({"lines": len(lines), "parts": len(parts)}))
sys.exit(0 if len(lines) >= len(paths) else 1)
EOF
check "Spark pipe: a JSON line per listed file came back" [ $? = 0 ]
check "Spark pipe: OUT equals the single-machine run byte for byte" same_as_single "$R/shared/out"

finish
