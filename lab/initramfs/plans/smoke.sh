# Plan "smoke": boot, wait lab.seconds, show the CPUs and (on the series) the
# kernel's NMI statistics.
out "LAB cpus=$(grep -c ^processor /proc/cpuinfo)"
sleep "$(arg lab.seconds 2)"
if [ -r /sys/kernel/debug/x86/nmi_stats ]; then
	sed 's/^/NMISTATS after /' /sys/kernel/debug/x86/nmi_stats >&3
	cat /sys/kernel/debug/x86/nmi_stats
fi
rc=0
