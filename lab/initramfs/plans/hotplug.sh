# Plan "hotplug": CPU hotplug of a CPU that receives external NMIs.
#
# 1. The torture test with lab.torture (':' separates parameters; it gives
#    ext_cpu and hotplug_ms): ext_cpu goes offline and back over and over
#    while the storm runs, and the device's NMIs follow it (nmi_del_ext_cpu()
#    on the CPU they leave, nmi_add_ext_cpu() on the one they go to).  Its
#    results as in plan "torture" (TORTURE_KV, NMISTATS before/after).
# 2. Then a quiet run: internal NMIs only (lab.quiet, default 5 s at 250
#    IPIs/s per CPU, no hazards, no external events, ext_cpu=0), with
#    x86/nmi_stats as NMISTATS quiet0/quiet1.  No CPU but 0 (LINT1) receives
#    external NMIs any more, so none may owe an external poll: a CPU that was
#    left marked shows poll NMIs there.
# rc = 0 when the first run's verdict is PASS and the quiet run ended.
. /plans/lib-torture.sh
TORTURE_USER_LOAD=$(arg lab.user_load 1)
torture_run "$(arg lab.torture duration=20:hazards=all:ext_cpu=1:hotplug_ms=700 | tr : " ")"
storm_rc=$rc
rc=1
stats_snap quiet0
if insmod /lib/modules/nmi_torture.ko \
	$(arg lab.quiet duration=5:hazards=none:ext_rate=0:ipi_rate=250:bursts=0:ext_cpu=0 | tr : " ") \
	start=1; then
	while [ "$(cat $D/control)" = running ]; do sleep 1; done
	stats_snap quiet1
	rmmod nmi_torture || out "LAB torture=rmmod-failed"
	rc=$storm_rc
else
	out "LAB quiet=insmod-failed"
fi
