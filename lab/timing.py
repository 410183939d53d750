# SPDX-License-Identifier: GPL-2.0
"""The per-part timing table of make check: build/timings.txt.

lab/timed.sh adds the Makefile's steps (deps, tree, kernel, ksft,
initramfs), lab/kbuild.sh every kernel build ("kernel:NAME"), check.py
every boot of boots.boot() ("boot:NAME"), check.py every part ("part:NAME",
which includes the builds and boots the part made).  One
"NAME SECONDS" line each, after a "start EPOCH" line.
"""

import os
import time

PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    'build', 'timings.txt')


def add(name, secs, path=PATH):
    with open(path, 'a') as f:
        f.write('%s %d\n' % (name, round(secs)))


def read(path=PATH):
    """(start epoch or None, [(name, seconds)])."""
    start, rows = None, []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    continue
                if parts[0] == 'start':
                    start, rows = int(parts[1]), []
                else:
                    rows.append((parts[0], int(parts[1])))
    except FileNotFoundError:
        pass
    return start, rows


def table(path=PATH, now=None):
    """The table's lines: steps and parts, the kernel builds indented under
    the part (or step) that made them, then the wall time since the start."""
    start, rows = read(path)
    out = ['timing (s):']
    pending = []
    for name, secs in rows:
        if name.startswith(('kernel:', 'boot:')):
            what, _, which = name.partition(':')
            pending.append('      %-24s %6d' % ({'kernel': 'build '}.get(what, 'boot ') + which,
                                                secs))
            continue
        out.append('  %-28s %6d' % (name, secs))
        out += pending
        pending = []
    out += pending
    if start is not None:
        out.append('  %-28s %6d' % ('wall time', (now or time.time()) - start))
    return out
