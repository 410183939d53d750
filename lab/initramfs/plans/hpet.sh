# Plan "hpet": the HPET NMI hard-lockup detector (nmi_watchdog=hpet).
#
# lab.hpet=probe: only report how the hard-lockup detector came up (the
#   host reads the "NMI watchdog:" lines from the console): the fallback boots.
# lab.hpet=remap: the channel's interrupt remapping entry (see below).
# lab.hpet=soak: the detector beside the torture test (see below).
# lab.hpet=full (default):
#   1. a healthy run of lab.hpet_secs seconds (default 60), with the
#      detector's counters and x86/nmi_stats before and after;
#   2. sysctl and debugfs: nmi_watchdog=0 stops the HPET NMIs, 1 restarts
#      them, 2 is refused; the handling CPU moved through debugfs (a bad CPU
#      refused) and by taking the handling CPU offline;
#   3. watchdog_thresh=lab.hpet_lockup_thresh (default 2), then a hard
#      lockup (lib/test_lockup.c, interrupts off for 3 periods + 1 s) on a
#      CPU other than the handling one, then on the handling CPU itself,
#      each between "lab: hpet: lockup start cpu=N" and "lab: hpet: lockup
#      end" console markers (the host checks who reported what, and when).
# Results: "LAB hpet_<key>=<value>" lines; the host judges them.
. /plans/lib-torture.sh
X=/sys/kernel/debug/x86
W=$X/nmi_watchdog_hpet

# A key of the detector's debugfs stats.
hk() { awk -v k="$1" '$1 == k { print $2 }' $W 2>/dev/null; }
# Column $2 of x86/nmi_stats for CPU (or "all") $1.
ns() {
	awk -v c="$1" -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
		$1 == c { print $h[col] }' $X/nmi_stats
}
kmsg() { echo "$*" > /dev/kmsg; }

# One consistent snapshot (no HPET NMI in between): hpet_<tag>_{nmis,fires,
# cpu,ext,ext_all,unknown,t,late,oow}.  The NMI comes every few seconds: retry.
snap() {
	i=0
	while :; do
		a=$(hk nmis)
		t=$(cut -d' ' -f1 /proc/uptime)
		c=$(hk cpu)
		ext=$(ns "$c" external)
		all=$(ns all external)
		unk=$(ns all unknown)
		f=$(hk fires)
		late=$(hk late)
		oow=$(hk out_of_window)
		[ "$(hk nmis)" = "$a" ] && break
		i=$((i + 1))
		[ $i -lt 10 ] || break
	done
	out "LAB hpet_$1_nmis=$a hpet_$1_fires=$f hpet_$1_cpu=$c hpet_$1_ext=$ext" \
		"hpet_$1_ext_all=$all hpet_$1_unknown=$unk hpet_$1_t=$t" \
		"hpet_$1_late=${late:--} hpet_$1_oow=${oow:--}"
	stats_snap "$1"
}

# span TAG SECS: snapshots TAG0 and TAG1, SECS seconds apart.
span() {
	snap "${1}0"
	sleep "$2"
	snap "${1}1"
}

# Wait until the detector's channel is running (the HPET source is chosen
# after the boot clocksource, from a late initcall).
wait_running() {
	i=0
	while [ "$(hk running)" != 1 ] && [ $i -lt "$1" ]; do sleep 1; i=$((i + 1)); done
	[ "$(hk running)" = 1 ]
}

# Hold CPU $1 with interrupts off for at least $2 seconds (TCG's delay loops
# run slower than asked on the secondary CPUs, whose loops_per_jiffy it
# cannot calibrate).  test_lockup never stays loaded: its init returns
# -EAGAIN, and then busybox's insmod retries with init_module(), which would
# run the lockup a second time.  The module opens file_path= first, so the
# file goes away (from another CPU) before the retry, which then fails.
lockup() {
	other=$(( ($1 + 1) % $(grep -c ^processor /proc/cpuinfo) ))
	: > /tmp/lockup.once
	kmsg "lab: hpet: lockup start cpu=$1 secs=$2"
	taskset -c $other sh -c 'sleep 2; rm -f /tmp/lockup.once' &
	taskset -c "$1" insmod /lib/modules/test_lockup.ko disable_irq=1 time_secs="$2" \
		file_path=/tmp/lockup.once 2> /tmp/insmod.err
	wait
	sleep 1
	kmsg "lab: hpet: lockup end cpu=$1"
	out "LAB hpet_lockup_$3=$1"
}

mode=$(arg lab.hpet full)
out "LAB hpet_mode=$mode cpus=$(grep -c ^processor /proc/cpuinfo)"
out "LAB hpet_sysctl_nmi_watchdog=$(cat /proc/sys/kernel/nmi_watchdog 2>/dev/null)" \
	"hpet_thresh=$(cat /proc/sys/kernel/watchdog_thresh 2>/dev/null)"
rc=0
if [ "$mode" = probe ]; then
	[ -r $W ] && out "LAB hpet_debugfs=1" || out "LAB hpet_debugfs=0"
	# The source the detector fell back to, then buddy asked for: it must
	# run although nmi_watchdog was read (as 0) above.
	S=/proc/sys/kernel/hardlockup_detector
	out "LAB hpet_probe_src=$(cat $S 2>/dev/null)"
	if echo buddy > $S 2>/dev/null; then r=ok; else r=refused; fi
	out "LAB hpet_probe_buddy=$r hpet_probe_buddy_now=$(cat $S 2>/dev/null)" \
		"hpet_probe_buddy_nmi_watchdog=$(cat /proc/sys/kernel/nmi_watchdog 2>/dev/null)"
	return 0 2>/dev/null || exit 0
fi

# lab.hpet=remap: the detector behind interrupt remapping (QEMU q35 with
# intel-iommu and a DMAR table that puts the HPET behind it; QEMU delivers
# no HPET message through the remapping table, so no NMI comes): the
# channel's route and its remapping table entry, at boot, after debugfs
# moved the handling CPU to CPU 1, after it moved back and to CPU 1 again
# at once, and after CPU 1 went offline; a bad CPU refused.  hpet_remap_<tag>_{cpu,route,irte} and the CPUs' APIC IDs.
IRT=/sys/kernel/debug/iommu/intel/ir_translation_struct
remap_snap() {
	route=$(hk route)
	a=$(printf '%d' "$route")
	# Remappable format: handle[14:0] in address bits 19:5, handle[15] in bit 2.
	idx=$(( ((a >> 5) & 0x7fff) | (((a >> 2) & 1) << 15) ))
	irte=$(awk -v i="$idx" '$1 == i { print $2 "," $3 "," $6; exit }' $IRT 2>/dev/null)
	out "LAB hpet_remap_$1_cpu=$(hk cpu) hpet_remap_$1_route=$route" \
		"hpet_remap_$1_index=$idx hpet_remap_$1_irte=${irte:--}"
}
if [ "$mode" = remap ]; then
	if [ ! -r $W ] || ! wait_running 20; then
		out "LAB hpet_running=0"
		return 1 2>/dev/null || exit 1
	fi
	out "LAB hpet_running=1 hpet_remap_irq=$(hk remap_irq)" \
		"hpet_remap_proc=$(awk '/hpet_hld/ { sub(":", "", $1); print $1 "," $(NF - 2) "," $(NF - 1); exit }' /proc/interrupts)" \
		"hpet_apicids=$(awk '/^apicid/ { printf "%s%s", s, $3; s = "," }' /proc/cpuinfo)"
	remap_snap boot
	echo 1 > $X/nmi_watchdog_hpet_cpu
	remap_snap moved
	# Back and forth at once: the second move comes while the vector
	# domain still holds the first one's old vector.
	echo 0 > $X/nmi_watchdog_hpet_cpu
	echo 1 > $X/nmi_watchdog_hpet_cpu
	remap_snap bounce
	if echo 7 > $X/nmi_watchdog_hpet_cpu 2>/dev/null; then r=accepted; else r=refused; fi
	out "LAB hpet_remap_bad=$r"
	echo 0 > /sys/devices/system/cpu/cpu1/online
	remap_snap offline
	echo 1 > /sys/devices/system/cpu/cpu1/online
	return 0 2>/dev/null || exit 0
fi

if [ ! -r $W ] || ! wait_running 20; then
	out "LAB hpet_running=0"
	rc=1
	return 1 2>/dev/null || exit 1
fi
out "LAB hpet_running=1 hpet_channel=$(hk channel) hpet_period_ms=$(hk period_ms)" \
	"hpet_watched=$(hk watched)"
thresh=$(cat /proc/sys/kernel/watchdog_thresh)

# lab.hpet=soak: the detector beside the torture test with all hazards and
# the user-mode load, for lab.hpet_secs seconds (default 600).  The host
# checks that the torture test lost nothing, that no lockup was reported,
# and that every HPET fire was claimed by an NMI of its own.
if [ "$mode" = soak ]; then
	secs=$(arg lab.hpet_secs 600)
	echo "lab: hpet: soak with the torture test, $secs s"
	snap s0
	torture_run "duration=$secs hazards=all"
	trc=$rc
	snap s1
	out "LAB hpet_end_running=$(hk running)"
	rc=$trc
	return $rc 2>/dev/null || exit $rc
fi

# lab.hpet=switch: the detector's source switched at run time
# (kernel.hardlockup_detector) beside the torture test with all hazards: a
# bad value, then perf (refused where no perf event can send NMIs, as under
# TCG), then hpet -> buddy -> hpet -> buddy -> hpet, lab.hpet_secs apart,
# with snapshots around the first buddy and hpet phases; then, the torture
# test done, a hard lockup on one CPU under buddy.  Each switch is logged
# ("lab: hpet: switch to NAME: ok|refused").
sw() {
	if echo "$1" > /proc/sys/kernel/hardlockup_detector 2>/dev/null; then r=ok; else r=refused; fi
	kmsg "lab: hpet: switch to $1: $r"
	out "LAB hpet_sw_$2=$r hpet_sw_$2_now=$(cat /proc/sys/kernel/hardlockup_detector)" \
		"hpet_sw_$2_running=$(hk running)"
}
if [ "$mode" = switch ]; then
	out "LAB hpet_sw_initial=$(cat /proc/sys/kernel/hardlockup_detector 2>/dev/null)"
	step=$(arg lab.hpet_secs 10)
	: > /tmp/torture.rc
	( torture_run "duration=$((step * 5)) hazards=all"; echo $rc > /tmp/torture.rc ) &
	sleep 2
	sw bogus bad
	sw perf perf
	sw buddy b1
	span b "$step"
	sw hpet h1
	span c "$step"
	sw buddy b2
	sleep "$step"
	sw hpet h2
	wait
	rc=$(cat /tmp/torture.rc)
	[ -n "$rc" ] || rc=1
	sw buddy b3
	sleep 1
	if [ -f /lib/modules/test_lockup.ko ]; then
		lockup 2 $((thresh * 3 + 1)) buddy
	else
		out "LAB hpet_lockup=absent"
		rc=1
	fi
	sleep 2
	sw hpet h3
	sleep $((thresh + 1))
	out "LAB hpet_end_running=$(hk running) hpet_end_nmis=$(hk nmis)"
	return $rc 2>/dev/null || exit $rc
fi

# 1. Healthy run.
secs=$(arg lab.hpet_secs 60)
echo "lab: hpet: healthy run, $secs s"
span h "$secs"

# 2. sysctl: off, refused value, on.
echo "lab: hpet: sysctl"
echo 0 > /proc/sys/kernel/nmi_watchdog
out "LAB hpet_off_running=$(hk running)"
span off $((thresh + 1))
if echo 2 > /proc/sys/kernel/nmi_watchdog 2>/dev/null; then
	out "LAB hpet_sysctl_bad=accepted"
else
	out "LAB hpet_sysctl_bad=refused"
fi
echo 1 > /proc/sys/kernel/nmi_watchdog
out "LAB hpet_on_running=$(hk running)"
span on $((thresh + 1))

# 2b. The handling CPU: a bad value, debugfs, CPU hotplug.
echo "lab: hpet: handling CPU"
ncpu=$(grep -c ^processor /proc/cpuinfo)
if echo "$ncpu" > $X/nmi_watchdog_hpet_cpu 2>/dev/null; then
	out "LAB hpet_cpu_bad=accepted"
else
	out "LAB hpet_cpu_bad=refused"
fi
if [ "$ncpu" -ge 3 ]; then
	first=$(hk cpu)
	to=1
	[ "$first" = 1 ] && to=2
	echo $to > $X/nmi_watchdog_hpet_cpu
	span mv $((thresh + 1))
	# The handling CPU goes offline: the hotplug callback moves the NMI.
	echo 0 > /sys/devices/system/cpu/cpu$to/online
	out "LAB hpet_offline_cpu=$to"
	span hp $((thresh + 1))
	echo 1 > /sys/devices/system/cpu/cpu$to/online
	echo -1 > $X/nmi_watchdog_hpet_cpu
	sleep 1
fi

# 3. Hard lockups: another CPU, then the handling CPU.  A shorter period
# (the sysctl reprograms the channel).  Interrupts stay off for three
# periods and a second: the detector reports a CPU at most two periods after
# its last watchdog hrtimer interrupt, or three when the CPU touched the
# watchdog just before (test_lockup's own console output does).
thresh=$(arg lab.hpet_lockup_thresh 2)
echo "$thresh" > /proc/sys/kernel/watchdog_thresh
sleep 1
out "LAB hpet_lockup_thresh=$(cat /proc/sys/kernel/watchdog_thresh)" \
	"hpet_lockup_period_ms=$(hk period_ms) hpet_lockup_running=$(hk running)"
if [ -f /lib/modules/test_lockup.ko ]; then
	hold=$((thresh * 3 + 1))
	h=$(hk cpu)
	victim=$(( (h + ncpu - 1) % ncpu ))
	[ "$victim" = "$h" ] && victim=$(( (h + 1) % ncpu ))
	snap l0
	lockup "$victim" "$hold" other
	sleep 2
	lockup "$(hk cpu)" "$hold" self
	sleep 2
	snap l1
else
	out "LAB hpet_lockup=absent"
	rc=1
fi
out "LAB hpet_end_running=$(hk running)"
