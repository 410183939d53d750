#!/bin/bash
# run.sh -- verify the NMI nesting model (nmi.pml) and its known-bad mutants.
#
#   bash model/run.sh
#
# 1. correct model, exhaustive safety search (assertions, end states)
# 2. correct model, non-progress-cycle search (repeat loop terminates)
# 3. every mutant: must produce a counter-example (expected failure)
# 4. protocol-as-written findings: informational, they produce a
#    counter-example (they show why amendments A1/A2 are in the model)
# 5. known limits / assumptions: informational (#MC in the flag==0 windows,
#    external sources that raise an NMI per event)
#
# Build products go to model/out/ (git-ignored).  stdout is deterministic;
# the elapsed time goes to stderr.  Last line:
#   MODEL states=<n> errors=<e> mutants_killed=<k>/<m>
# Exit status 0 iff errors=0 and every mutant was killed.
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out
MODEL=$HERE/nmi.pml
SAFE_EV=${SAFE_EV:-6}   # source events, correct model, safety
NP_EV=${NP_EV:-5}       # source events, correct model, non-progress
MUT_EV=${MUT_EV:-3}     # source events, mutants / findings
PANOPT="-m1000000 -w22"
CC=${CC:-gcc}

for t in spin "$CC"; do
  command -v "$t" >/dev/null 2>&1 || { echo "run.sh: $t not found" >&2; exit 2; }
done

start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"

# run_check NAME MODE DEFINES...
#   MODE: safety | np | np-noassert
#   sets: C_STATES C_ERRORS C_WHY
run_check() {
  local name=$1 mode=$2; shift 2
  local d=$OUT/$name ccf runf
  mkdir -p "$d"
  cp "$MODEL" "$d/nmi.pml"
  case $mode in
    safety)     ccf="-DSAFETY"; runf="$PANOPT" ;;
    np)         ccf="-DNP";     runf="$PANOPT -l" ;;
    np-noassert)ccf="-DNP";     runf="$PANOPT -l -A" ;;
  esac
  # mutants/findings: -i = keep searching for the shortest counter-example
  # (not for cycle searches: their trails do not replay after -i)
  if [ "${SHORTEST:-0}" = 1 ] && [ "$mode" = safety ]; then
    runf="$runf -i"; ccf="$ccf -DREACH"
  fi
  C_STATES=0; C_ERRORS=0; C_WHY=""
  if ! (cd "$d" && spin "$@" -a nmi.pml >spin.log 2>&1); then
    C_ERRORS=1; C_WHY="spin -a failed (see $d/spin.log)"; return
  fi
  # -O2 for the big correct-model searches; the mutant searches are tiny, so
  # a quick -O0 build is cheaper overall
  local opt=-O2
  [ "${SHORTEST:-0}" = 1 ] && opt=-O0
  if ! (cd "$d" && $CC $opt $ccf -o pan pan.c >cc.log 2>&1); then
    C_ERRORS=1; C_WHY="gcc failed (see $d/cc.log)"; return
  fi
  (cd "$d" && ./pan $runf >pan.out 2>&1)
  C_STATES=$(awk '/states, stored/ {print $1; exit}' "$d/pan.out")
  C_ERRORS=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$d/pan.out" | head -1)
  if [ -z "$C_STATES" ] || [ -z "$C_ERRORS" ]; then
    C_STATES=${C_STATES:-0}; C_ERRORS=1
    C_WHY="pan did not finish (see $d/pan.out)"; return
  fi
  if [ "$C_ERRORS" -eq 0 ] && \
     grep -q 'max search depth too small\|Search not completed\|out of memory' "$d/pan.out"; then
    C_ERRORS=1; C_WHY="search incomplete (see $d/pan.out)"; return
  fi
  if [ "$C_ERRORS" -gt 0 ] && [ -f "$d/nmi.pml.trail" ]; then
    # replay the trail: narrative (printf lines) + the violated property
    (cd "$d" && spin "$@" -t nmi.pml >trail.full 2>&1)
    grep -E '^ +(ENV|NMI|CPU|C |CTX|END)|Error|failed|CYCLE' "$d/trail.full" \
      | sed -E 's/^ +//' >"$d/trail.txt"
    local line
    line=$(sed -n 's/^spin: nmi.pml:\([0-9]*\), Error: assertion violated.*/\1/p' \
           "$d/trail.full" | head -1)
    if grep -m1 '^pan:1:' "$d/pan.out" | grep -q 'non-progress cycle'; then
      C_WHY="P4: non-progress cycle: CPU loops in NMI code forever"
    elif [ -n "$line" ]; then
      C_WHY=$(sed -n "${line}p" "$d/nmi.pml" | sed -n 's|.*/\* *\(P[0-9]:[^*]*\)\*/.*|\1|p' \
              | sed 's/ *$//')
      C_WHY="${C_WHY:-assertion at nmi.pml:$line} (nmi.pml:$line)"
    elif grep -q 'invalid end state' "$d/pan.out"; then
      C_WHY="invalid end state (deadlock)"
    else
      C_WHY="error (see $d/pan.out)"
    fi
    C_WHY="$C_WHY, $(grep -c . "$d/trail.txt") trail lines"
  fi
}

total_states=0
total_errors=0

echo "== correct model (protocol.md + amendments A1, A2; see README.md)"
run_check correct-safety safety -o3 -DMAXEV=$SAFE_EV   # -o3: exact unreached-code report
printf 'CHECK correct   safety     MAXEV=%d  states=%s errors=%s %s\n' \
  "$SAFE_EV" "$C_STATES" "$C_ERRORS" "${C_WHY:+-- $C_WHY}"
total_states=$((total_states + C_STATES)); total_errors=$((total_errors + C_ERRORS))

# vacuity check: every COVER probe of the model must be reached by that search
n_cov=$(grep -o '"COVER [^"]*"' "$MODEL" | sort -u | wc -l)
uncov=$(sed -n '/^unreached in proctype cpu/,/^unreached in\|^pan: elapsed/p' \
        "$OUT/correct-safety/pan.out" | grep -o "COVER [^\\']*" | sed 's/\\n$//')
n_uncov=0
[ -n "$uncov" ] && n_uncov=$(printf '%s\n' "$uncov" | wc -l)
if grep -q '^unreached in proctype cpu' "$OUT/correct-safety/pan.out"; then
  printf 'CHECK correct   coverage   %d/%d scenario probes reached\n' \
    $((n_cov - n_uncov)) "$n_cov"
  [ -n "$uncov" ] && printf '      not reached: %s\n' $uncov
else
  n_uncov=1; echo "CHECK correct   coverage   no unreached-code report from pan"
fi
total_errors=$((total_errors + n_uncov))

run_check correct-np np -DMAXEV=$NP_EV -DNOBOUND
printf 'CHECK correct   non-prog.  MAXEV=%d  states=%s errors=%s %s\n' \
  "$NP_EV" "$C_STATES" "$C_ERRORS" "${C_WHY:+-- $C_WHY}"
total_states=$((total_states + C_STATES)); total_errors=$((total_errors + C_ERRORS))

echo "== mutants (expected to FAIL)"
# name:mode
MUTANTS="
MUTANT_RSP_ONLY:safety
MUTANT_RSP_RANGE:safety
MUTANT_NO_REPEAT:safety
MUTANT_CLEAR_AFTER_IRET:safety
MUTANT_NO_RIP_CHECK:safety
MUTANT_NO_REGION_CHECK:safety
MUTANT_COPY_OUTSIDE_REGION:safety
MUTANT_REPEAT_NO_COPY:np-noassert
MUTANT_USER_ON_IST:safety
MUTANT_EXT_ONLY_UNCLAIMED:safety
MUTANT_NO_POLL:safety
MUTANT_NO_SWALLOW:safety
MUTANT_FAST_RETURN_TF:safety
MUTANT_FAST_RETURN_RF:safety
MUTANT_FAST_RETURN_DB:np-noassert
MUTANT_FAST_RETURN_SYNC_CORE:safety
"
n_mut=0; n_killed=0
for m in $MUTANTS; do
  name=${m%%:*}; mode=${m##*:}
  extra=""
  [ "$mode" != safety ] && extra="-DNOBOUND"
  SHORTEST=1 run_check "$name" "$mode" -DMAXEV=$MUT_EV -D"$name" $extra
  n_mut=$((n_mut + 1))
  if [ "$C_ERRORS" -gt 0 ]; then
    n_killed=$((n_killed + 1))
    printf 'MUTANT %-29s KILLED    [%s] %s\n' "$name" "$mode" "$C_WHY"
  else
    printf 'MUTANT %-29s SURVIVED  [%s] states=%s\n' "$name" "$mode" "$C_STATES"
  fi
done

echo "== protocol as written (informational; see README.md 'Findings')"
for f in LITERAL_POLL LITERAL_SWALLOW; do
  SHORTEST=1 run_check "$f" safety -DMAXEV=$MUT_EV -D"$f"
  if [ "$C_ERRORS" -gt 0 ]; then
    printf 'FINDING %-26s counter-example: %s (out/%s/trail.txt)\n' "$f" "$C_WHY" "$f"
  else
    printf 'FINDING %-26s no counter-example at MAXEV=%d\n' "$f" "$MUT_EV"
  fi
done

echo "== outside the protocol's scope / assumptions (informational)"
for f in MC_IN_WINDOW EXT_EDGE_EVERY; do
  SHORTEST=1 run_check "$f" safety -DMAXEV=$MUT_EV -D"$f"
  if [ "$C_ERRORS" -gt 0 ]; then
    printf 'LIMIT   %-26s counter-example: %s (out/%s/trail.txt)\n' "$f" "$C_WHY" "$f"
  else
    printf 'LIMIT   %-26s no counter-example at MAXEV=%d\n' "$f" "$MUT_EV"
  fi
done

echo "elapsed $(( $(date +%s) - start ))s" >&2
echo "MODEL states=$total_states errors=$total_errors mutants_killed=$n_killed/$n_mut"
[ "$total_errors" -eq 0 ] && [ "$n_killed" -eq "$n_mut" ]
