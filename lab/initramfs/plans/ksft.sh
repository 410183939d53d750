# Plan "ksft": run x86 selftests from /ksft as one KTAP suite on the results
# channel.  lab.tests=a,b,... picks tests (default: every binary in /ksft);
# lab.test_timeout= bounds each one (seconds).  A test's own output goes to the
# results channel as KTAP diagnostics, prefixed with "# ".
tests=$(arg lab.tests all)
tmo=$(arg lab.test_timeout 600)
if [ "$tests" = all ]; then
	tests=$(cd /ksft && ls)
else
	tests=$(echo "$tests" | tr ',' ' ')
fi
n=0
for t in $tests; do n=$((n + 1)); done
out "KTAP version 1"
out "1..$n"
i=0
rc=0
for t in $tests; do
	i=$((i + 1))
	echo "lab: [$i/$n] $t"
	before=$(nmis)
	if [ ! -x "/ksft/$t" ]; then
		out "not ok $i $t # missing"
		rc=1
		continue
	fi
	( cd /tmp && timeout -s KILL "$tmo" "/ksft/$t" ) > /tmp/out.txt 2>&1 3>&-
	st=$?
	sed 's/^/# /' /tmp/out.txt >&3
	delta=$(( $(nmis) - before ))
	case $st in
	0) out "ok $i $t # nmis=$delta" ;;
	4) out "ok $i $t # SKIP nmis=$delta" ;;
	137) out "not ok $i $t # TIMEOUT after ${tmo}s nmis=$delta"; rc=1 ;;
	*) out "not ok $i $t # exit=$st nmis=$delta"; rc=1 ;;
	esac
done
# The KUnit suites that ran at boot (the series' dispatcher tests), each
# line prefixed so the host can tell them from the selftests' KTAP.
for f in /sys/kernel/debug/kunit/*/results; do
	[ -r "$f" ] && sed 's/^/KUNIT /' "$f" >&3
done
