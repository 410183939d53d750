# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import scan  # noqa: E402

OOPS = """\
[   12.000000] Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP PTI
[   12.000001] CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.117 #1
"""
USER_TRAP = '[    3.1] traps: mov_ss_trap_64[80] general protection fault ip:401000 sp:7ffc error:0'
BACKTRACE = """\
[    5.0] NMI backtrace for cpu 1
[    5.0] RIP: 0010:default_idle+0x9/0x20
[    5.0] Call Trace:
"""


class ScanTest(unittest.TestCase):
    def test_oops_found(self):
        c = scan.counts(scan.scan(OOPS))
        self.assertEqual(c['oops'], 1)

    def test_user_trap_is_not_an_oops(self):
        self.assertEqual(sum(scan.counts(scan.scan(USER_TRAP)).values()), 0)

    def test_nmi_backtrace_is_not_a_finding(self):
        self.assertEqual(sum(scan.counts(scan.scan(BACKTRACE)).values()), 0)

    def test_each_kind(self):
        lines = {
            'warn': 'WARNING: CPU: 1 PID: 0 at arch/x86/kernel/nmi.c:100 foo+0x1/0x2',
            'lockdep': 'WARNING: possible circular locking dependency detected',
            'lockup': 'watchdog: BUG: soft lockup - CPU#0 stuck for 22s!',
            'unknown': 'Uhhuh. NMI received for unknown reason 21 on CPU 0.',
            'nmi_slow': 'INFO: NMI handler (nmi_cpu_backtrace_handler) took too long to run: 2.1 msecs',
        }
        for kind, line in lines.items():
            found = scan.scan(line)
            self.assertGreaterEqual(sum(len(v) for v in found.values()), 1, kind)
        self.assertEqual(scan.counts(scan.scan(lines['unknown']))['unknown'], 1)
        self.assertEqual(scan.counts(scan.scan('Dazed and confused, but trying to continue'))
                         ['unknown'], 1)

    def test_slow_handler_is_reported_not_failing(self):
        found = scan.scan('INFO: NMI handler (foo) took too long to run: 2.1 msecs')
        self.assertEqual(scan.counts(found)['nmi_slow'], 1)
        self.assertEqual(scan.failing(found), 0)
        self.assertEqual(scan.failing(scan.scan(OOPS)), 1)

    def test_allow(self):
        line = 'Uhhuh. NMI received for unknown reason 21 on CPU 0.'
        self.assertEqual(scan.counts(scan.scan(line, allow=[r'unknown reason']))['unknown'], 0)
        self.assertEqual(scan.counts(scan.scan(OOPS, allow=[r'unknown reason']))['oops'], 1)

    def test_allow_only_in_window(self):
        uhhuh = '[ %d.0] Uhhuh. NMI received for unknown reason 21 on CPU 0.'
        text = '\n'.join([uhhuh % 1, '[ 2.0] lab: host NMI storm on', uhhuh % 3,
                           uhhuh % 4, '[ 5.0] lab: host NMI storm off', uhhuh % 6])
        window = (r'lab: host NMI storm on', r'lab: host NMI storm off')
        found = scan.scan(text, allow=[r'unknown reason'], window=window)
        self.assertEqual(found['unknown'], [uhhuh % 1, uhhuh % 6])
        # An oops inside the window is still a finding.
        found = scan.scan('lab: host NMI storm on\n' + OOPS, allow=[r'unknown reason'],
                          window=window)
        self.assertEqual(scan.counts(found)['oops'], 1)


if __name__ == '__main__':
    unittest.main()
