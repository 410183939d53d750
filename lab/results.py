# SPDX-License-Identifier: GPL-2.0
"""Parse what a guest plan wrote to the results channel.

The channel carries KTAP (selftests), "LAB key=value ..." lines from the
init and plans, and "TORTURE_KV key=value" lines copied from the torture
test's debugfs results.
"""

import re

KTAP_RESULT = re.compile(r'^(ok|not ok) (\d+) (\S+)(?: # (.*))?$')


class Results:
    def __init__(self):
        self.tests = []         # (name, 'pass'|'fail'|'skip', directive)
        self.plan = None        # KTAP plan count
        self.lab = {}           # LAB key=value
        self.torture = {}       # TORTURE_KV key=value
        self.torture_line = None
        self.diag = {}          # test name -> its diagnostic lines
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


def parse(text):
    r = Results()
    pending = []
    for raw in text.splitlines():
        line = raw.rstrip('\r')
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
