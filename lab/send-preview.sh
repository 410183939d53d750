#!/bin/bash
# make send-preview: what 'git send-email' would send for patches/ (the
# cover letter, then patches/series in order), without sending anything:
# --dry-run, and /bin/true as the mail program, which is never run.  No SMTP
# configuration, no network.
#   To: the maintainers of the files the series touches
#       (scripts/get_maintainer.pl --no-git, so it works offline)
#   Cc: the cover letter's Cc lines (reviewers and lists), less the To:
# Every message goes to the same people, so that each sees the whole thread.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
pd=$top/patches
[ -d "$tree/.git" ] || { echo "send-preview: no tree at $tree (make tree)" >&2; exit 1; }
cover=$pd/0000-cover-letter.patch
patches=("$cover")
while IFS= read -r p; do [ -n "$p" ] && patches+=("$pd/$p"); done < "$pd/series"

from=$(sed -n '/^$/q; s/^From: //p' "$cover")
mail=$(sed 's/.*<\(.*\)>.*/\1/' <<< "$from")
to=$(cd "$tree" && perl scripts/get_maintainer.pl --no-rolestats --no-git --no-git-fallback \
	--no-tree --m --nor --nol "${patches[@]:1}" | grep -v -F "$mail" | sort -u)
cc=$(sed -n '/^$/q; s/^Cc: //p' "$cover" | grep -v -x -F "$to" || true)
args=()
while IFS= read -r a; do [ -n "$a" ] && args+=(--to "$a"); done <<< "$to"
while IFS= read -r a; do [ -n "$a" ] && args+=(--cc "$a"); done <<< "$cc"

echo "send-preview: ${#patches[@]} messages from $from; To: $(grep -c . <<< "$to"), Cc: $(grep -c . <<< "$cc") (dry run: nothing is sent)"
cd "$tree"
git -c sendemail.smtpserver= send-email --dry-run --confirm=never --no-validate \
	--suppress-cc=self --suppress-cc=cc --from "$from" --smtp-server=/bin/true "${args[@]}" \
	"${patches[@]}" < /dev/null
