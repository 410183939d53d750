# SPDX-License-Identifier: GPL-2.0
"""Rows and totals: one verdict per row (PASS, FAIL, XFAIL), printed as it
is added.  The bottom of the lab: it imports nothing of the lab.
"""


class Tally:
    def __init__(self):
        self.rows = []

    def add(self, verdict, name, note=''):
        self.rows.append((verdict, name, note))
        print('%-5s %s%s' % (verdict, name, ('  (%s)' % note) if note else ''), flush=True)

    def passed(self):
        return sum(1 for v, _, _ in self.rows if v in ('PASS', 'XFAIL'))

    def failed(self):
        return sum(1 for v, _, _ in self.rows if v not in ('PASS', 'XFAIL'))
