#!/usr/bin/env bash
# Regenerate lab/openstack/constraints.txt: the frozen package set of the lab's
# OpenStack 2025.1 ("Epoxy") venv. Needs network access to PyPI; takes ~1 min.
#
#   lab/openstack/compile-constraints.sh [CUTOFF]      (default 2025-03-07)
#
# openstack/requirements' stable/2025.1 upper-constraints.txt cannot be fetched
# from the lab machine, so this builds the closest honest equivalent with uv:
#   1. resolve requirements.in for CPython 3.11 with only releases uploaded
#      before CUTOFF (the 2025.1 requirements freeze was in early March 2025),
#      except for the service packages (newest release of their series) and the
#      exact upper-constraints versions in pins.txt;
#   2. install that set into a scratch venv and find the OpenStack deliverables
#      among it (their metadata names openstack.org / opendev.org);
#   3. resolve again, letting each OpenStack library move to the newest patch
#      release of the minor series the first pass chose (that is what a stable
#      branch's upper-constraints does), everything else held as in pass 1.
# The result goes to constraints.txt with a header that records all of this.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CUTOFF=${1:-2025-03-07}
NOW=$(date -u +%Y-%m-%d)
PYTHON=${LAB_OPENSTACK_PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/pip" install -q uv
UV=$WORK/tools/bin/uv
uv_version=$("$UV" --version)

# Names whose newest release (not the cutoff) is wanted: services and pins.
lifted() {
    grep -Eo '^[A-Za-z0-9_.-]+' "$HERE/requirements.in" | grep -E '^(keystone|openstack-placement|nova|cinder|neutron|glance)$'
    grep -Eo '^[A-Za-z0-9_.-]+' "$HERE/pins.txt"
    [[ -s $WORK/lift.txt ]] && cat "$WORK/lift.txt"
    return 0
}

compile() {
    local input=$1 out=$2 name args=()
    for name in $(lifted | sort -u); do
        args+=(--exclude-newer-package "$name=${NOW}T00:00:00Z")
    done
    "$UV" pip compile -q "$input" -c "$HERE/pins.txt" --python-version 3.11 \
        --exclude-newer "${CUTOFF}T00:00:00Z" "${args[@]}" --no-header --no-annotate -o "$out"
}

echo "pass 1: resolve with cutoff $CUTOFF" >&2
compile "$HERE/requirements.in" "$WORK/pass1.txt"

echo "pass 2: install pass 1 into a scratch venv to find the OpenStack deliverables" >&2
"$UV" venv -q -p "$PYTHON" "$WORK/scratch"
"$UV" pip install -q -p "$WORK/scratch/bin/python" -r "$WORK/pass1.txt"
"$WORK/scratch/bin/python" - "$WORK/pass1.txt" "$HERE/pins.txt" >"$WORK/pass2.in" 3>"$WORK/lift.txt" <<'EOF'
import importlib.metadata as md
import os
import re
import sys

def key(name):
    return re.sub(r"[-_.]+", "-", name).lower()

services = {"keystone", "openstack-placement", "nova", "cinder", "neutron", "glance"}
pinned = {key(line.split("==")[0]) for line in open(sys.argv[2]) if "==" in line}
openstack = set()
for dist in md.distributions():
    meta = dist.metadata
    text = " ".join(str(meta.get(k) or "") for k in ("Author", "Author-email", "Home-page",
                                                      "Maintainer-email"))
    text += " ".join(meta.get_all("Project-URL") or [])
    if re.search(r"openstack\.org|opendev\.org|openstack-discuss", text, re.I):
        openstack.add(key(meta["Name"]))
lift = os.fdopen(3, "w")
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    name, version = line.split("==")
    parts = version.split(".")
    if key(name) in openstack - services - pinned and len(parts) >= 2 and parts[1].isdigit():
        print(f"{name}>={version},<{parts[0]}.{int(parts[1]) + 1}")
        print(name, file=lift)
    else:
        print(line)
EOF

echo "pass 3: stable patch releases of $(wc -l <"$WORK/lift.txt") OpenStack libraries" >&2
compile "$WORK/pass2.in" "$WORK/pass2.txt"

{
    cat <<EOF
# Constraints of the lab's OpenStack 2025.1 ("Epoxy") venv: lab/lib/openstack.sh
# installs lab/openstack/requirements.in with \`pip install -c\` this file and
# rebuilds the venv whenever this file changes (hash stamp).
#
# NOT openstack/requirements' upper-constraints.txt (stable/2025.1 cannot be
# fetched on the lab machine). Produced on $NOW by compile-constraints.sh
# ($uv_version, CPython 3.11, Linux x86_64), which approximates it:
#   * releases uploaded before $CUTOFF (the 2025.1 requirements freeze);
#   * service packages at the newest release of their series;
#   * the exact stable/2025.1 upper-constraints versions of pins.txt;
#   * every other OpenStack library at the newest patch release of the minor
#     series chosen under the cutoff (what a stable branch's u-c does).
# Re-run lab/openstack/compile-constraints.sh to regenerate; do not edit by hand.
EOF
    cat "$WORK/pass2.txt"
} >"$HERE/constraints.txt"
echo "wrote $HERE/constraints.txt ($(grep -c '==' "$HERE/constraints.txt") packages)" >&2
