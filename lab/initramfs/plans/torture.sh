# Plan "torture": the NMI torture test with parameters from
# lab.torture=key=value:key=value (':' separates parameters), user-mode load
# from the NMI selftests running beside it, and the results copied to the
# results channel as "TORTURE_KV key=value" lines.  The plan passes when the
# torture test's verdict is PASS.
# lab.user_load=0 leaves the user-mode load out.
. /plans/lib-torture.sh
TORTURE_USER_LOAD=$(arg lab.user_load 1)
torture_run "$(arg lab.torture duration=20:hazards=all | tr : " ")"
