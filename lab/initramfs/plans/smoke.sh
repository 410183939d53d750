# Plan "smoke": boot, show the CPUs and NMI counts, and stop.
out "LAB cpus=$(grep -c ^processor /proc/cpuinfo)"
sleep "$(arg lab.seconds 2)"
rc=0
