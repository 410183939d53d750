# Plan "kvm": KVM as host in the guest (kvm_amd on QEMU TCG's SVM), its
# selftests from /kvmsft (lab/kvmsft.sh, lab/mkinitramfs.sh) run while
# NMIs arrive, so the kernel takes NMIs across its own guests' VM exits.
#
# lab.kvm_tests=a,b,...   tests to run (default: every binary in /kvmsft)
# lab.kvm_timeout=N       bound of each test, seconds (default 300)
# lab.kvm_retry=a,b,...   tests run again, up to twice, while a run fails
#                         (their assertions measure wall-clock time)
# lab.kvm_phases=storm,torture   which phases (default both):
#   storm    every test while the host injects NMIs (QMP; vm.py --nmi-gate
#            opens the storm on "LAB host_nmi=on"); between the console
#            markers "lab: kvm: host NMI storm on|off"
#   torture  every test again beside the NMI torture test (NMI IPIs to
#            every CPU, external events, lab.kvm_torture= parameters with
#            ':' between them, default hazards=all), no host NMIs
# Results:
#   LAB kvm_dev=yes|no kvm_cpu_*=, kvm_amd_<param>=   how KVM came up
#   KVMSFT phase=P test=T status=pass|fail|skip|timeout exit=N retried=0|1|2 secs=N
#          nmis=N nmi_exits=N nested_nmi_exits=N      one line per test run
#   LAB kvm_<test>=pass|fail|skip|timeout             storm phase
#   LAB kvm_<test>_torture=...                        torture phase
#   KVMSFT_OUT P T <line>     the last 40 lines of the test's output
#   LAB kvm_<P>_nmis= kvm_<P>_nmi_exits= kvm_<P>_nested_nmi_exits= kvm_<P>_secs=
#   NMISTATS kvm0|kvm1 ...    x86/nmi_stats around the storm (series only)
# nmis counts /proc/interrupts; nmi_exits counts the VM exits whose reason
# was an NMI (SVM_EXIT_NMI, trace event kvm:kvm_exit), i.e. NMIs that
# arrived while a vCPU was in guest mode; nested_nmi_exits the ones from L2
# (kvm:kvm_nested_vmexit).  The plan passes when every test ran to an end
# (pass, fail or skip are judged by the host) and /dev/kvm exists.
. /plans/lib-torture.sh
tests=$(arg lab.kvm_tests all)
tmo=$(arg lab.kvm_timeout 300)
retry=$(arg lab.kvm_retry "")
phases=$(arg lab.kvm_phases storm,torture | tr ',' ' ')
tparams=$(arg lab.kvm_torture hazards=all | tr : ' ')
if [ "$tests" = all ]; then
	tests=$(ls /kvmsft 2>/dev/null)
else
	tests=$(echo "$tests" | tr ',' ' ')
fi
kmsg() { echo "$*" > /dev/kmsg; }
# POSIX named semaphores (hardware_disable_test's sem_open) live in /dev/shm.
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm
now() { cut -d' ' -f1 /proc/uptime; }

# KVM is a module of the test kernel: kvm_amd comes up on TCG's SVM,
# kvm_intel refuses ("VMX not supported"), and its refusal is expected.
for m in irqbypass kvm kvm-amd kvm-intel; do
	[ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
# How KVM came up: /dev/kvm, the CPU's SVM flags, kvm_amd's parameters.
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { case "$flags" in *" $1 "*) echo 1 ;; *) echo 0 ;; esac; }
out "LAB kvm_dev=$([ -c /dev/kvm ] && echo yes || echo no)" \
	"kvm_cpu_vendor=$(awk '/^vendor_id/ { print $3; exit }' /proc/cpuinfo)" \
	"kvm_cpu_svm=$(has svm) kvm_cpu_npt=$(has npt) kvm_cpu_nrip_save=$(has nrip_save)" \
	"kvm_cpu_vgif=$(has vgif) kvm_cpu_vmx=$(has vmx)"
for p in nested npt nrips vgif avic; do
	out "LAB kvm_amd_$p=$(cat /sys/module/kvm_amd/parameters/$p 2>/dev/null || echo -)"
done
out "LAB kvm_tests=$(echo $tests | tr ' ' ,)"

# VM exits on an NMI, counted by two trace instances, one event each; the
# per-CPU stats count every event, also those the ring buffer overwrote.
T=/sys/kernel/tracing
mount -t tracefs tracefs $T 2>/dev/null
trace_on() {
	for ev in kvm_exit kvm_nested_vmexit; do
		d=$T/instances/lab_$ev
		mkdir -p $d 2>/dev/null
		echo 'exit_reason == 97' > $d/events/kvm/$ev/filter &&
			echo 1 > $d/events/kvm/$ev/enable || out "LAB kvm_trace=unavailable"
	done
}
tcount() {
	cat $T/instances/lab_$1/per_cpu/cpu*/stats 2>/dev/null |
		awk '/^(entries|overrun):/ { n += $2 } END { print n + 0 }'
}
trace_on

# run_one BINARY: run it in a session of its own, SIGKILL the whole
# session after $tmo seconds (status 137) and whatever it left behind when
# it ends (hardware_disable_test's forked VMs outlive a killed parent).
run_one() {
	( cd /tmp && exec setsid "$1" ) &
	tp=$!
	( trap 'kill $sp; exit 0' TERM; sleep "$tmo" & sp=$!; wait $sp; kill -9 -- -$tp ) 2>/dev/null &
	wd=$!
	wait $tp
	ts=$?
	kill $wd 2>/dev/null
	wait $wd
	kill -9 -- -$tp 2>/dev/null
	return $ts
}

# run_tests PHASE: every test once; KVMSFT lines; rc=1 if one did not end.
run_tests() {
	p0=$(nmis) x0=$(tcount kvm_exit) l0=$(tcount kvm_nested_vmexit) s0=$(now)
	i=0
	for t in $tests; do
		i=$((i + 1))
		echo "lab: kvm: $1 [$i] $t"
		a=$(nmis) x=$(tcount kvm_exit) l=$(tcount kvm_nested_vmexit) s=$(now)
		if [ ! -x "/kvmsft/$t" ]; then
			st=127
		else
			run_one "/kvmsft/$t" > /tmp/kvm.out 2>&1
			st=$?
		fi
		# A test with a wall-clock assertion gets up to two more runs
		# (retried=1 or 2); each failed run's output is kept.
		retried=0
		case ",$retry," in *",$t,"*)
			while [ $st != 0 ] && [ $st != 4 ] && [ $st != 127 ] && [ $retried -lt 2 ]; do
				retried=$((retried + 1))
				sed "s/^/KVMSFT_OUT $1 $t run $retried: /" /tmp/kvm.out | tail -n 20 >&3
				run_one "/kvmsft/$t" > /tmp/kvm.out 2>&1
				st=$?
			done ;;
		esac
		case $st in
		0) r=pass ;;
		4) r=skip ;;
		137) r=timeout ;;
		*) r=fail ;;
		esac
		tail -n 40 /tmp/kvm.out | sed "s/^/KVMSFT_OUT $1 $t /" >&3
		out "KVMSFT phase=$1 test=$t status=$r exit=$st retried=$retried" \
			"secs=$(awk -v a="$s" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')" \
			"nmis=$(( $(nmis) - a ))" \
			"nmi_exits=$(( $(tcount kvm_exit) - x ))" \
			"nested_nmi_exits=$(( $(tcount kvm_nested_vmexit) - l ))"
		if [ "$1" = storm ]; then
			out "LAB kvm_$t=$r"
		else
			out "LAB kvm_${t}_$1=$r"
		fi
		[ $r = timeout ] && rc=1
		[ $st = 127 ] && rc=1
	done
	out "LAB kvm_$1_nmis=$(( $(nmis) - p0 )) kvm_$1_nmi_exits=$(( $(tcount kvm_exit) - x0 ))" \
		"kvm_$1_nested_nmi_exits=$(( $(tcount kvm_nested_vmexit) - l0 ))" \
		"kvm_$1_secs=$(awk -v a="$s0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')"
}

rc=0
[ -c /dev/kvm ] || rc=1
for ph in $phases; do
	case $ph in
	storm)
		stats_snap kvm0
		out "LAB host_nmi=on"
		kmsg "lab: kvm: host NMI storm on"
		sleep 1
		run_tests storm
		out "LAB host_nmi=off"
		sleep 1
		kmsg "lab: kvm: host NMI storm off"
		stats_snap kvm1
		;;
	torture)
		if [ ! -f /lib/modules/nmi_torture.ko ]; then
			out "LAB kvm_torture=absent"
			continue
		fi
		# The torture test runs until stopped (duration=0), without its
		# user-mode load: the KVM selftests are the load.
		( TORTURE_USER_LOAD=0 torture_run "$tparams duration=0"; echo $rc > /tmp/torture.rc ) &
		tpid=$!
		n=0
		while [ "$(cat $D/control 2>/dev/null)" != running ] && [ $n -lt 60 ]; do
			sleep 1
			n=$((n + 1))
		done
		run_tests torture
		echo stop > $D/control 2>/dev/null
		wait $tpid
		out "LAB kvm_torture_rc=$(cat /tmp/torture.rc 2>/dev/null || echo -)"
		;;
	esac
done
