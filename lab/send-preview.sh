#!/bin/bash
# make send-preview: what would go to the list for the series, without
# sending anything: "b4 send --dry-run" on build/linux's series branch as
# lab/cover.sh (make export) set it up for b4 prep: the cover letter from
# lab/cover-letter.txt, To: and Cc: from scripts/get_maintainer.pl (b4 prep
# --auto-to-cc), the same recipients on every message so that each sees
# the whole thread.  No SMTP configuration, no network, no signature.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
[ -d "$tree/.git" ] || { echo "send-preview: no tree at $tree (make tree)" >&2; exit 1; }
command -v b4 >/dev/null || { echo "send-preview: b4 missing (make deps)" >&2; exit 1; }
# The branch's cover letter and recipients, as make export leaves them.
"$top/lab/cover.sh" "$(mktemp -d)" >/dev/null
cd "$tree"
out=$(b4 send --no-sign --dry-run 2>&1)
# b4 shows each message behind "    | ".
msgs=$(grep -c '^    | Subject: \[PATCH' <<< "$out" || true)
echo "send-preview: $msgs messages; recipients of each (dry run: nothing is sent):"
awk '{ if (!sub(/^    \| /, "")) next }
	/^(To|Cc): / { p = 1 } p && /^[^ \t]/ && !/^(To|Cc): / { exit } p' <<< "$out"
echo
echo "$out"
