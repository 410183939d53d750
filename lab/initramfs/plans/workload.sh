# Plan "workload" (make run): the NMI workload on every CPU while the host
# injects NMIs: the torture test with all hazards when it is built, NMI
# backtraces (sysrq-l) to all CPUs in any case.
secs=$(arg lab.seconds 30)
echo 1 > /proc/sys/kernel/sysrq
# Backtraces on every CPU, a few times, before the storm.
for i in 1 2 3; do echo l > /proc/sysrq-trigger; sleep 1; done
out "LAB sysrq_l=3"
if [ -f /lib/modules/nmi_torture.ko ]; then
	. /plans/lib-torture.sh
	torture_run "duration=$secs hazards=all"
else
	out "LAB torture=absent"
	sleep "$secs"
	rc=0
fi
