# Shared by the plans that run the torture test.
D=/sys/kernel/debug/nmi_torture

# User-mode load: NMI selftests restarted until told to stop, so that NMIs
# land in user mode, in syscalls and in page faults.  A failing run of one of
# them (exit status other than pass or skip) fails the plan.
user_load_start() {
	: > /tmp/user_load.run
	rm -f /tmp/user_load.fail
	for t in nmi_regs_64 nmi_cr2_64 nmi_syscall_rsp_64; do
		[ -x /ksft/$t ] || continue
		( while [ -e /tmp/user_load.run ]; do
			NMI_TEST_SECONDS=5 /ksft/$t > /tmp/$t.log 2>&1
			st=$?
			[ $st = 0 ] || [ $st = 4 ] || { echo "$t" >> /tmp/user_load.fail; cat /tmp/$t.log; }
		done ) &
	done
}

user_load_stop() {
	rm -f /tmp/user_load.run
	wait
}

# The series' per-CPU NMI statistics, when the kernel has them.
stats_snap() {
	[ -r /sys/kernel/debug/x86/nmi_stats ] || return 0
	sed "s/^/NMISTATS $1 /" /sys/kernel/debug/x86/nmi_stats >&3
}

# Genuine unknown NMIs, once the torture test is unloaded: with
# lab.genuine_secs=N the host (vm.py --nmi-gate) sends QMP NMIs for N
# seconds.  They carry no status and nothing else sends NMIs then, so the
# kernel must report each one as unknown; its reports in that window are
# counted ("LAB genuine_reported=", the host counts what it sent).  The
# ring buffer is emptied first (the console keeps everything), so that
# nothing the torture run printed can roll the count.
genuine_phase() {
	secs=$(arg lab.genuine_secs 0)
	[ "$secs" -gt 0 ] || return 0
	sleep 1
	dmesg -c > /dev/null
	echo "lab: genuine NMIs on" > /dev/kmsg
	out "LAB host_nmi=on"
	sleep "$secs"
	out "LAB host_nmi=off"
	sleep 2
	echo "lab: genuine NMIs off" > /dev/kmsg
	out "LAB genuine_reported=$(dmesg | grep -c 'NMI received for unknown reason')"
}

# torture_run "key=value key=value": load the module, wait for the storm to
# end, copy its results to the results channel; rc = 0 only on verdict=PASS
# with no user-load failure.  TORTURE_USER_LOAD=0 leaves the user-mode load
# out; TORTURE_HOOK names a command run after the storm, before rmmod (the
# module's memory is still there).
torture_run() {
	rc=1
	if [ ! -f /lib/modules/nmi_torture.ko ]; then
		out "LAB torture=absent"
		return
	fi
	# The kernel's own swallow window unless lab.swallow_window_us= says
	# otherwise: the verdicts hold at the default.
	w=$(arg lab.swallow_window_us "")
	if [ -n "$w" ] && [ -w /sys/kernel/debug/x86/nmi_swallow_window_us ]; then
		echo "$w" > /sys/kernel/debug/x86/nmi_swallow_window_us
	fi
	stats_snap before
	[ "${TORTURE_USER_LOAD:-1}" = 0 ] || user_load_start
	# An IPI later than the kernel's swallow window (10 ms) may arrive empty
	# and be reported: the test counts those (ipi_slow, at its default
	# slow_ipi_us of 1 ms), and the lab accepts as many unknown NMIs.
	if ! insmod /lib/modules/nmi_torture.ko $1 start=1; then
		out "LAB torture=insmod-failed"
		user_load_stop
		return
	fi
	# NMI backtraces of every CPU in the storm (sysrq-l): NMI IPIs among
	# the internal NMIs; the host looks for "NMI backtrace for cpu N" of
	# each CPU on the console.
	sleep 2
	echo 1 > /proc/sys/kernel/sysrq
	echo l > /proc/sysrq-trigger
	out "LAB backtrace_sent=1 cpus=$(grep -c ^processor /proc/cpuinfo)"
	while [ "$(cat $D/control)" = running ]; do sleep 1; done
	user_load_stop
	stats_snap after
	cat $D/results > /tmp/torture.res
	sed 's/^/TORTURE_KV /' /tmp/torture.res >&3
	[ -z "$TORTURE_HOOK" ] || $TORTURE_HOOK
	rmmod nmi_torture || out "LAB torture=rmmod-failed"
	genuine_phase
	if [ -s /tmp/user_load.fail ]; then
		out "LAB user_load_failures=$(sort /tmp/user_load.fail | uniq -c | tr -s ' \n' '  ')"
		return
	fi
	grep -q '^TORTURE .*verdict=PASS' /tmp/torture.res && rc=0
}
