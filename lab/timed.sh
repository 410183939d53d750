#!/bin/bash
# timed.sh NAME CMD...: run CMD, then add "NAME SECONDS" to build/timings.txt,
# the per-part timing table that make check prints at its end (lab/timing.py).
# timed.sh --reset: start a new table.
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/build"
if [ "$1" = --reset ]; then
	echo "start $(date +%s)" > "$top/build/timings.txt"
	exit 0
fi
name=$1
shift
start=$(date +%s)
"$@"
rc=$?
echo "$name $(($(date +%s) - start))" >> "$top/build/timings.txt"
exit $rc
