#!/bin/bash
# cover.sh [DIR]: write DIR/0000-cover-letter.patch (default patches/) with
# b4, as a submitter using b4 prep would.  build/linux's series branch is
# enrolled for "b4 prep" with the base as fork point (the branch lab-base)
# and its cover letter in the branch description
# (b4.prep-cover-strategy=branch-description: no extra commit in the
# series).  lab/cover-letter.txt (subject, blank line, body) becomes that
# description, "b4 prep --auto-to-cc" adds To: and Cc: from
# scripts/get_maintainer.pl, and "b4 send -o" (a dry run: nothing is sent)
# writes the messages; the cover letter is kept.  Stable output: b4's date,
# message id, tracking header and change-id replaced, base-commit resolved.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
src=$top/lab/cover-letter.txt
out=${1:-$top/patches}/0000-cover-letter.patch
command -v b4 >/dev/null || { echo "cover: b4 missing (make deps)" >&2; exit 1; }
# b4 drops a description line that starts with "#" (its comment lines).
if grep -n '^#' "$src" >&2; then
	echo "cover: $src: a line starting with '#' would be lost (b4 comment)" >&2
	exit 1
fi
branch=$(git -C "$tree" symbolic-ref --short HEAD)
cd "$tree"
git branch -f lab-base base
git config b4.prep-cover-strategy branch-description
# In a kernel tree without an SMTP setting b4 would pick the kernel.org web
# endpoint (which needs a signature); a program that is never run keeps it
# on the SMTP path, where -o and --dry-run write instead of sending.
git config sendemail.smtpserver /bin/true
git config b4.send-auto-to-cmd 'scripts/get_maintainer.pl --nogit --nogit-fallback --nogit-chief-penguins --norolestats --nol'
git config b4.send-auto-cc-cmd 'scripts/get_maintainer.pl --nogit --nogit-fallback --nogit-chief-penguins --norolestats --nom'
b4 prep --show-info >/dev/null 2>&1 || b4 prep -e lab-base >/dev/null 2>&1
git config "branch.$branch.description" "$(cat "$src")"
b4 prep --auto-to-cc >/dev/null 2>&1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
b4 send --no-sign -o "$tmp" >/dev/null 2>&1
cover=$(ls "$tmp"/0000-*.eml)
base=$(git rev-parse base)
# Headers: one per line with its folded continuation lines; drop the
# volatile ones.
awk -v base="$base" '
	BEGIN { hdr = 1 }
	hdr && /^$/ { hdr = 0; print; next }
	hdr && /^[ \t]/ { if (!skip) print; next }
	hdr { skip = ($0 ~ /^(Message-Id|X-B4-Tracking|In-Reply-To|References):/) }
	hdr && /^Date:/ { print "Date: Sat, 21 Nov 2026 00:00:00 +0000"; next }
	hdr { if (!skip) print; next }
	/^base-commit: / { print "base-commit: " base; next }
	/^change-id: / { next }
	{ print }' "$cover" > "$out"
echo "cover: $out"
