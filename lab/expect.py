# SPDX-License-Identifier: GPL-2.0
"""The expected-failures file: lab/expected-failures.

One entry a line: a test name, then the reason.  A test may be expected to
fail on the series only if it fails identically on the base (the lab proves
that by running it there).  Names:
  <selftest binary>   e.g. mov_ss_trap_64
  torture:ext         the external-loss part of the torture verdict
"""

import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'expected-failures')


def parse(text):
    out = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise ValueError('expected-failures:%d: "%s" needs a reason' % (n, line))
        if parts[0] in out:
            raise ValueError('expected-failures:%d: %s listed twice' % (n, parts[0]))
        out[parts[0]] = parts[1].strip()
    return out


def load(path=PATH):
    try:
        with open(path) as f:
            return parse(f.read())
    except FileNotFoundError:
        return {}


def classify(name, failed, expected, base_failed=None):
    """Verdict of one test.

    failed: it failed on the series.  base_failed: its outcome on the base,
    None when not run there.  Returns 'PASS', 'FAIL', 'XFAIL' or 'XPASS'.
    An expected failure counts as XFAIL only when the base failed identically;
    a test listed as expected that passes on the series is XPASS (a stale
    entry), which fails the run so that the file stays true.
    """
    if name not in expected:
        return 'FAIL' if failed else 'PASS'
    if not failed:
        return 'XPASS'
    if base_failed is None:
        return 'FAIL'
    return 'XFAIL' if base_failed else 'FAIL'
