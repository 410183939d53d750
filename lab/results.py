# SPDX-License-Identifier: GPL-2.0
"""Parse what a guest plan wrote to the results channel.

The channel carries KTAP (selftests), "LAB key=value ..." lines from the
init and plans, "TORTURE_KV key=value" lines copied from the torture
test's debugfs results, and "KUNIT <line>" lines: the KTAP of the KUnit
suites that ran at boot, from debugfs, read with the kernel's own KUnit
parser (tools/testing/kunit/kunit_parser.py of the tree).
"""

import io
import os
import re
import sys

KTAP_RESULT = re.compile(r'^(ok|not ok) (\d+) (\S+)(?: # (.*))?$')
# The kernel tree's KUnit tool: its parser reads the KUnit results.
KUNIT_TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'build', 'linux', 'tools', 'testing', 'kunit')


class Results:
    def __init__(self):
        self.tests = []         # (name, 'pass'|'fail'|'skip', directive)
        self.plan = None        # KTAP plan count
        self.lab = {}           # LAB key=value
        self.torture = {}       # TORTURE_KV key=value
        self.torture_line = None
        self.diag = {}          # test name -> its diagnostic lines
        self.nmistats = {}      # tag -> {'cpu'-column value: {column: int}}
        self.kunit_lines = []   # the KUNIT lines, prefix removed
        self._kunit = None
        self.ended = False

    def test_map(self):
        return {name: (st, d) for name, st, d in self.tests}

    @property
    def kunit(self):
        """suite -> {'plan': n, 'cases': [(name, st)], 'ok': bool or None,
        'errors': n}, from kunit_suites()."""
        if self._kunit is None:
            self._kunit = kunit_suites(self.kunit_lines)
        return self._kunit


def parse_kv(text):
    out = {}
    for tok in text.split():
        if '=' in tok:
            k, v = tok.split('=', 1)
            out[k] = v
    return out


def parse_nmistats(r, words):
    """NMISTATS <tag> <row of x86/nmi_stats>; the first row is the header."""
    if len(words) < 2:
        return
    tag, row = words[0], words[1:]
    table = r.nmistats.setdefault(tag, {})
    if row[0] == 'cpu':
        table['_header'] = row[1:]
        return
    header = table.get('_header')
    if header and len(row) == len(header) + 1:
        table[row[0]] = {k: int(v) for k, v in zip(header, row[1:]) if v.isdigit()}


def nmistats_delta(r, before='before', after='after', row='all'):
    """Counts of the series' NMI statistics between two snapshots, or None."""
    a = r.nmistats.get(before, {}).get(row)
    b = r.nmistats.get(after, {}).get(row)
    if a is None or b is None:
        return None
    return {k: b[k] - a.get(k, 0) for k in b if k != 'longest_ns'}


def kunit_parser(tool=KUNIT_TOOL):
    """The tree's kunit_parser module (ImportError if there is no tree)."""
    if tool not in sys.path:
        sys.path.insert(0, tool)
    import kunit_parser     # noqa: E402 (tools/testing/kunit of the tree)
    return kunit_parser


KUNIT_STATUS = {'SUCCESS': 'pass', 'FAILURE': 'fail', 'SKIPPED': 'skip'}


def kunit_suites(lines, tool=KUNIT_TOOL):
    """The KUnit results (KTAP lines) -> {suite: {'plan', 'cases', 'ok',
    'errors'}}, read by the kernel's kunit_parser.  A case that did not end
    in ok/not ok/SKIP (crashed, unparsable) is 'crash'; 'ok' is None when
    the suite has no result line; 'errors' counts what the parser flagged."""
    if not lines:
        return {}
    kp = kunit_parser(tool)
    # The parser reports as kunit.py does, on the printer it imported.
    saved, kp.stdout._output = kp.stdout._output, io.StringIO()
    try:
        run = kp.parse_run_tests(lines)
    finally:
        kp.stdout._output = saved
    out = {}
    for suite in run.subtests:
        # The parser says TEST_CRASHED when the suite has no result line.
        out[suite.name] = {
            'plan': suite.expected_count,
            'cases': [(c.name, KUNIT_STATUS.get(c.status.name, 'crash'))
                      for c in suite.subtests],
            'ok': {'SUCCESS': True, 'SKIPPED': True, 'FAILURE': False}.get(suite.status.name),
            'errors': suite.counts.errors,
        }
    return out


def parse(text):
    r = Results()
    pending = []
    for raw in text.splitlines():
        line = raw.rstrip('\r')
        if line.startswith('KUNIT '):
            r.kunit_lines.append(line[len('KUNIT '):])
            continue
        if line.startswith('LAB '):
            if line.startswith('LAB end '):
                r.ended = True
            r.lab.update(parse_kv(line[4:]))
            continue
        if line.startswith('TORTURE_KV '):
            body = line[len('TORTURE_KV '):]
            if body.startswith('TORTURE '):
                r.torture_line = body
            r.torture.update(parse_kv(body))
            continue
        if line.startswith('NMISTATS '):
            parse_nmistats(r, line.split()[1:])
            continue
        if line.startswith('1..'):
            r.plan = int(line[3:].split()[0])
            continue
        if line.startswith('#'):
            pending.append(line[2:] if line.startswith('# ') else line[1:])
            continue
        m = KTAP_RESULT.match(line)
        if m:
            ok, _, name, directive = m.groups()
            directive = directive or ''
            if ok == 'ok':
                st = 'skip' if directive.upper().startswith('SKIP') else 'pass'
            else:
                st = 'fail'
            r.tests.append((name, st, directive))
            r.diag[name] = pending
            pending = []
    return r


def parse_file(path):
    try:
        with open(path, 'rb') as f:
            return parse(f.read().decode('utf-8', 'replace'))
    except FileNotFoundError:
        return Results()
