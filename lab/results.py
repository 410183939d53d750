# SPDX-License-Identifier: GPL-2.0
"""Parse what a guest plan wrote to the results channel.

The channel carries KTAP (selftests), "LAB key=value ..." lines from the
init and plans, "TORTURE_KV key=value" lines copied from the torture
test's debugfs results, and "KUNIT <line>" lines: the KTAP of the KUnit
suites that ran at boot, from debugfs.
"""

import re

KTAP_RESULT = re.compile(r'^(ok|not ok) (\d+) (\S+)(?: # (.*))?$')
KUNIT_CASE = re.compile(r'^\s+(ok|not ok) (\d+) (\S+)(?: # (.*))?$')
KUNIT_SUITE = re.compile(r'^\s*# Subtest: (\S+)')
KUNIT_PLAN = re.compile(r'^\s+1\.\.(\d+)')


class Results:
    def __init__(self):
        self.tests = []         # (name, 'pass'|'fail'|'skip', directive)
        self.plan = None        # KTAP plan count
        self.lab = {}           # LAB key=value
        self.torture = {}       # TORTURE_KV key=value
        self.torture_line = None
        self.diag = {}          # test name -> its diagnostic lines
        self.nmistats = {}      # tag -> {'cpu'-column value: {column: int}}
        self.kunit = {}         # suite -> {'plan': n, 'cases': [(name, st)], 'ok': bool}
        self.ended = False

    def test_map(self):
        return {name: (st, d) for name, st, d in self.tests}


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


def parse_kunit(r, line, state):
    """One line of a KUnit suite's debugfs results (KTAP, cases indented)."""
    m = KUNIT_SUITE.match(line)
    if m:
        state['suite'] = m.group(1)
        r.kunit.setdefault(m.group(1), {'plan': None, 'cases': [], 'ok': None})
        return
    suite = r.kunit.get(state.get('suite'))
    if suite is None:
        return
    m = KUNIT_PLAN.match(line)
    if m:
        suite['plan'] = int(m.group(1))
        return
    m = KUNIT_CASE.match(line)
    if m:
        ok, _, name, directive = m.groups()
        skip = (directive or '').upper().startswith('SKIP')
        suite['cases'].append((name, 'skip' if skip else 'pass' if ok == 'ok' else 'fail'))
        return
    m = KTAP_RESULT.match(line)
    if m and m.group(3) == state['suite']:
        suite['ok'] = m.group(1) == 'ok'


def parse(text):
    r = Results()
    pending = []
    kunit = {}
    for raw in text.splitlines():
        line = raw.rstrip('\r')
        if line.startswith('KUNIT '):
            parse_kunit(r, line[len('KUNIT '):], kunit)
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
