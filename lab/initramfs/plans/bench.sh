# Plan "bench" (make bench, lab/bench.py): one part of the benchmark, chosen
# by lab.bench=step|torture|sweep|scale.  The host drives the step part
# through QEMU's gdbstub; the guest waits for it at gates.
#
# A gate: the plan sets the host name to bench-NAME, says so on the console
# ("lab: bench: gate NAME") and waits until the host, through the gdbstub,
# has overwritten the node name in init_uts_ns.  While the gdbstub holds the
# VM stopped, guest time stands still, so the gate cannot time out under it.
. /plans/lib-torture.sh

gate() {
	hostname "bench-$1"
	echo "lab: bench: gate $1"
	n=0
	while [ "$(hostname)" = "bench-$1" ]; do
		sleep 0.1
		n=$((n + 1))
		[ "$n" -lt "$(( $2 * 10 ))" ] || { out "LAB bench_gate_$1=timeout"; return 1; }
	done
	out "LAB bench_gate_$1=open"
}

# The address of a symbol of the torture module (/proc/kallsyms; per-CPU
# symbols show their per-CPU offset).
modsym() {
	awk -v s="$1" '$3 == s && $4 == "[nmi_torture]" { print $1; exit }' /proc/kallsyms
}

mode=$(arg lab.bench step)
out "LAB bench=$mode cpus=$(grep -c ^processor /proc/cpuinfo)"
case "$mode" in
step)
	# The module's handlers registered (internal and external), nothing
	# sending: the host sets the internal source's pending count and
	# injects the NMI, so that the internal handler claims it.
	rc=1
	# lab.bench_hazards= runs hazards in the handler (the trapret part).
	insmod /lib/modules/nmi_torture.ko hazards="$(arg lab.bench_hazards none)" \
		ipi_rate=0 ext_rate=0 \
		duration=0 grace_ms=0 start=1 || { out "LAB torture=insmod-failed"; return; }
	out "LAB bench_nt_cpu=0x$(modsym nt_cpu)"
	# The module's code symbols, to name the instructions counted there.
	awk '$4 == "[nmi_torture]" && ($2 == "t" || $2 == "T") { print "KSYM", $1, $3 }' \
		/proc/kallsyms >&3
	echo "lab: bench: nt_cpu=0x$(modsym nt_cpu)"
	# Kernel context: the idle loop.
	gate idle 600 || return
	# User context: a busy loop in user mode (no system calls).
	sh -c 'while :; do :; done' &
	loop=$!
	gate user 600
	kill $loop
	wait $loop 2>/dev/null
	echo stop > $D/control
	rmmod nmi_torture && rc=0
	;;
torture)
	# External events under internal load, and their latency histogram:
	# the host reads it from the module (gate hist) before rmmod.
	hist_gate() {
		echo "lab: bench: nt_ext=0x$(modsym nt_ext)"
		out "LAB bench_nt_ext=0x$(modsym nt_ext)"
		gate hist 120
	}
	TORTURE_HOOK=hist_gate
	torture_run "$(arg lab.torture duration=60:hazards=all | tr : " ")"
	;;
sweep)
	# Internal NMI rate steps (per sending CPU), one torture run each,
	# without the user-mode load: lab.sweep=rate,rate,...
	TORTURE_USER_LOAD=0
	p=$(arg lab.torture duration=10:hazards=none | tr : " ")
	all=0
	for r in $(arg lab.sweep 1000 | tr , " "); do
		echo "lab: bench: sweep ipi_rate=$r"
		out "LAB sweep_step=$r"
		torture_run "$p ipi_rate=$r"
		out "LAB sweep_rc=$rc"
	done
	rc=0
	;;
scale)
	# NMI backtraces on every CPU (sysrq-l); the host counts the console's
	# "NMI backtrace for cpu N" lines.
	echo 1 > /proc/sys/kernel/sysrq
	n=$(grep -c ^processor /proc/cpuinfo)
	t0=$(cut -d' ' -f1 /proc/uptime)
	echo l > /proc/sysrq-trigger
	t1=$(cut -d' ' -f1 /proc/uptime)
	out "LAB scale_cpus=$n sysrq_l_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	# Give the deferred console output time to drain.
	i=0
	while [ "$(dmesg | grep -c 'NMI backtrace for cpu')" -lt "$n" ] && [ $i -lt 60 ]; do
		sleep 1
		i=$((i + 1))
	done
	sleep 2
	out "LAB scale_dmesg_backtraces=$(dmesg | grep -c 'NMI backtrace for cpu')"
	rc=0
	;;
*)
	out "LAB error=unknown-bench-mode"
	;;
esac
