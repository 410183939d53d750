# SPDX-License-Identifier: GPL-2.0
"""Rows and totals: one verdict per row (PASS, FAIL, XFAIL), printed as a
KTAP result line as it is added (Documentation/dev-tools/ktap.rst):

    KTAP version 1
    ok 1 lab:TestPollStorms
    not ok 2 torture:lost # 3 of 250000 lost
    ok 3 ksft:sigreturn_64 # XFAIL fails the same way on the base

The plan line is left out, as KTAP allows when the number of tests is not
known in advance; the other lines a part prints are diagnostic lines to a
KTAP parser.

A part's measurements end in a summary line, one format for all of them
(RESULT, TORTURE, LOCKFREE, BENCH, SERIES, BISECT, WINDOWS, HPETSOAK,
HPETSWITCH, KVMSFT, MODEL): the kind in capitals, then key=value pairs, keys in
lower case, values without spaces, "-" for a value not measured.
summary_line() writes one, parse_summary() reads one (lab/bisect.sh and
model/run.sh write theirs in the shell, by the same rules).

The bottom of the lab: it imports nothing of the lab.
"""
import re

VERDICTS = ('PASS', 'FAIL', 'XFAIL')


def ktap_line(n, verdict, name, note=''):
    """Row n as a KTAP result line: ok/not ok, the name (no '#': it would
    start the directive), and the note as the line's diagnostic data."""
    name = ' '.join(name.replace('#', '_').split()) or 'unnamed'
    tail = ' '.join(str(note).split())
    if verdict == 'XFAIL':
        tail = 'XFAIL ' + tail if tail else 'XFAIL'
    return '%s %d %s%s' % ('ok' if verdict in ('PASS', 'XFAIL') else 'not ok', n, name,
                           ' # ' + tail if tail else '')


class Tally:
    def __init__(self, quiet=False):
        self.rows = []
        self.quiet = quiet

    def add(self, verdict, name, note=''):
        if verdict not in VERDICTS:
            raise ValueError('verdict %r is none of %s' % (verdict, ', '.join(VERDICTS)))
        if not self.rows and not self.quiet:
            print('KTAP version 1', flush=True)
        self.rows.append((verdict, name, note))
        if not self.quiet:
            print(ktap_line(len(self.rows), verdict, name, note), flush=True)

    def say(self, line):
        """A part's diagnostic line (what it found, what it measured)."""
        print(line, flush=True)

    def passed(self):
        return sum(1 for v, _, _ in self.rows if v in ('PASS', 'XFAIL'))

    def failed(self):
        return sum(1 for v, _, _ in self.rows if v not in ('PASS', 'XFAIL'))

    def totals(self):
        """kselftest's closing diagnostic line."""
        xfail = sum(1 for v, _, _ in self.rows if v == 'XFAIL')
        return '# Totals: pass:%d fail:%d xfail:%d xpass:0 skip:0 error:0' % (
            self.passed() - xfail, self.failed(), xfail)


class Later:
    """Rows and diagnostic lines of a part that runs beside another one (in
    a thread), kept in their order and given to the tally when it is done,
    so that the output reads the same as when the parts run one by one."""

    def __init__(self):
        self.events = []

    def add(self, verdict, name, note=''):
        if verdict not in VERDICTS:
            raise ValueError('verdict %r is none of %s' % (verdict, ', '.join(VERDICTS)))
        self.events.append(('add', (verdict, name, note)))

    def say(self, line):
        self.events.append(('say', line))

    @property
    def rows(self):
        return [e for kind, e in self.events if kind == 'add']

    def replay(self, t):
        for kind, e in self.events:
            if kind == 'add':
                t.add(*e)
            else:
                t.say(e)
        self.events = []


SUMMARY_KIND = re.compile(r'[A-Z][A-Z0-9_]*$')
SUMMARY_KEY = re.compile(r'[a-z][a-z0-9_]*$')
SUMMARY_LINE = re.compile(r'(?:^|\s)([A-Z][A-Z0-9_]*)((?: [a-z][a-z0-9_]*=\S+)+)\s*$')


def summary_line(kind, fields):
    """KIND key=value ...; fields: (key, value) pairs or a dict.  A value
    that is None or empty is written '-', blanks in a value '_' (a value
    comes from a guest's console: it must not break the line)."""
    if not SUMMARY_KIND.match(kind):
        raise ValueError('summary kind %r' % kind)
    words = [kind]
    for k, v in (fields.items() if isinstance(fields, dict) else fields):
        if not SUMMARY_KEY.match(k):
            raise ValueError('%s: key %r' % (kind, k))
        words.append('%s=%s' % (k, '_'.join(str('' if v is None else v).split()) or '-'))
    return ' '.join(words)


def parse_summary(line, kind=None):
    """(kind, {key: value}) of the summary line in line (which may carry a
    prefix, "base: TORTURE ..."), or None; with kind, only that kind."""
    m = SUMMARY_LINE.search(line.rstrip())
    if not m or (kind and m.group(1) != kind):
        return None
    return m.group(1), dict(w.split('=', 1) for w in m.group(2).split())
