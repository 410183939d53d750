# SPDX-License-Identifier: GPL-2.0
"""Scan a guest console log for signs of a broken kernel.

Any oops, BUG, WARNING, lockdep report, panic, lockup, or "NMI received for
unknown reason" / "Dazed and confused" line is a finding, unless the plan
declares it expected with an allow pattern.
"""

import re

# (kind, regex): the kinds are the RESULT line's counters.
PATTERNS = [
    # die() prints "Oops: <what>" for every kernel-mode fault (GP, #DF, #SS,
    # #UD...); user-mode faults print "traps: comm[pid] ..." and are not ours.
    ('oops', r'\bOops\b|kernel BUG at|\bBUG: |Unable to handle kernel|Kernel panic'),
    ('warn', r'WARNING: |\bUBSAN\b|\bKASAN\b|objtool: '),
    ('lockdep', r'possible circular locking|inconsistent lock state|'
                r'possible recursive locking|suspicious RCU usage|'
                r'INFO: lockdep is turned off|bad unlock balance'),
    ('lockup', r'soft lockup|hard LOCKUP|rcu_\w+ (self-)?detected stall|'
               r'rcu: INFO:|hung_task|Watchdog detected hard LOCKUP'),
    ('unknown', r'NMI received for unknown reason|Dazed and confused'),
    ('nmi_slow', r'NMI handler \(.*\) took too long'),
]
# Reported, not failing: under TCG a vCPU thread shares two host cores with
# three others, so the host can deschedule it in the middle of any handler
# and make it look slow.  The series' own nmi_stats still records it.
INFO_KINDS = ('nmi_slow',)
COMPILED = [(k, re.compile(r)) for k, r in PATTERNS]
KINDS = [k for k, _ in PATTERNS]

# Lines the kernel prints on every TCG boot that match a pattern but are not
# findings (kept short on purpose; each has a reason).
BENIGN = [
    # No PMU under TCG: the perf NMI watchdog cannot start.
    re.compile(r'NMI watchdog: Perf NMI watchdog permanently disabled'),
]


# A plan's allowance for the host's inject-nmi storm (QMP, LINT1 on CPU 0):
# those NMIs carry no status a handler could claim, so each one is,
# correctly, an unknown NMI.
HOST_NMI_ALLOW = [
    r'NMI received for unknown reason',
    r'Dazed and confused, but trying to continue',
]


def scan(text, allow=(), window=None):
    """Return {kind: [lines]} for every finding in text not matched by allow.
    With window=(start, end) regexes, allow applies only from a line matching
    start to the next line matching end."""
    allowed = [re.compile(a) for a in allow]
    found = {k: [] for k in KINDS}
    inside = window is None
    for line in text.splitlines():
        if window and re.search(window[0], line):
            inside = True
        elif window and re.search(window[1], line):
            inside = False
        if any(b.search(line) for b in BENIGN):
            continue
        for kind, rx in COMPILED:
            if rx.search(line):
                if not (inside and any(a.search(line) for a in allowed)):
                    found[kind].append(line.strip())
                break
    return found


def counts(found):
    return {k: len(v) for k, v in found.items()}


def failing(found):
    """Number of findings that fail a run."""
    return sum(len(v) for k, v in found.items() if k not in INFO_KINDS)


def scan_file(path, allow=(), window=None):
    with open(path, 'rb') as f:
        return scan(f.read().decode('utf-8', 'replace'), allow, window)


BACKTRACE_RE = re.compile(r'NMI backtrace for cpu (\d+)')


def backtrace_cpus(text):
    """The CPUs that printed an NMI backtrace (skipped idle ones too)."""
    return sorted({int(c) for c in BACKTRACE_RE.findall(text)})
