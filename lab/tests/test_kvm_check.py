# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kvm_check  # noqa: E402

CHANNEL = """\
LAB plan=kvm
LAB kvm_dev=yes kvm_cpu_vendor=AuthenticAMD kvm_cpu_svm=1
KVMSFT_OUT storm cpuid_test Random seed: 0x6b8b4567
KVMSFT phase=storm test=cpuid_test status=pass exit=0 secs=0.7 nmis=191 nmi_exits=0 \
nested_nmi_exits=0
LAB kvm_cpuid_test=pass
KVMSFT_OUT storm debug_regs Random seed: 0x6b8b4567
KVMSFT_OUT storm debug_regs ==== Test Assertion Failure ====
KVMSFT_OUT storm debug_regs   lib/x86_64/processor.c:567: Unconditional guest failure
KVMSFT_OUT storm debug_regs   pid=178 tid=178 errno=4 - Interrupted system call
KVMSFT_OUT storm debug_regs sh: addr2line: not found
KVMSFT_OUT storm debug_regs   Unhandled exception '0x3' at guest RIP '0x4022ca'
KVMSFT phase=storm test=debug_regs status=fail exit=254 secs=0.4 nmis=110 nmi_exits=2 \
nested_nmi_exits=0
KVMSFT_OUT torture xapic_ipi_test
KVMSFT phase=torture test=xapic_ipi_test status=timeout exit=137 secs=300.0 nmis=9 \
nmi_exits=353 nested_nmi_exits=4
KVMSFT phase=torture status=pass
LAB end rc=0
"""

CONSOLE = """\
[   9.1] Uhhuh. NMI received for unknown reason 00 on CPU 0.
[   9.1] Dazed and confused, but trying to continue
[   9.2] Uhhuh. NMI received for unknown reason 3c on CPU 2.
[   9.3] Uhhuh. NMI received for unknown reason 00 on CPU 0.
"""


class KvmCheckTest(unittest.TestCase):
    def test_parse_runs(self):
        runs = kvm_check.parse_kvmsft(CHANNEL)
        self.assertEqual([(r['phase'], r['test'], r['status']) for r in runs],
                         [('storm', 'cpuid_test', 'pass'), ('storm', 'debug_regs', 'fail'),
                          ('torture', 'xapic_ipi_test', 'timeout')])
        self.assertEqual(runs[1]['exit'], 254)
        self.assertEqual(runs[1]['nmi_exits'], 2)
        self.assertEqual(runs[2]['secs'], 300.0)
        self.assertEqual(runs[2]['nested_nmi_exits'], 4)
        self.assertEqual(runs[0]['out'], ['Random seed: 0x6b8b4567'])
        self.assertEqual(runs[2]['out'], [''])

    def test_failure_note(self):
        runs = kvm_check.parse_kvmsft(CHANNEL.replace('\n', '\r\n'))
        self.assertEqual(kvm_check.failure_note(runs[1]),
                         "lib/x86_64/processor.c:567: Unconditional guest failure; "
                         "Unhandled exception '0x3' at guest RIP '0x4022ca'")
        self.assertEqual(kvm_check.failure_note(runs[2]), 'no output')

    def test_retried(self):
        text = """\
KVMSFT_OUT storm xapic_ipi_test run 1: ==== Test Assertion Failure ====
KVMSFT_OUT storm xapic_ipi_test run 1:   x86_64/xapic_ipi_test.c:182: halter
KVMSFT_OUT storm xapic_ipi_test run 1:   pid=624 tid=629 errno=4
KVMSFT_OUT storm xapic_ipi_test run 2: ==== Test Assertion Failure ====
KVMSFT_OUT storm xapic_ipi_test run 2:   x86_64/xapic_ipi_test.c:182: halter
KVMSFT_OUT storm xapic_ipi_test run 2:   pid=700 tid=705 errno=4
KVMSFT_OUT storm xapic_ipi_test Halter vCPU thread started
KVMSFT phase=storm test=xapic_ipi_test status=pass exit=0 retried=2 secs=4.2 nmis=9 \
nmi_exits=3 nested_nmi_exits=0
"""
        r = kvm_check.parse_kvmsft(text)[0]
        self.assertEqual((r['status'], r['retried']), ('pass', 2))
        self.assertEqual(kvm_check.failed_run_note(r, 1),
                         'x86_64/xapic_ipi_test.c:182: halter; pid=624 tid=629 errno=4')
        self.assertEqual(kvm_check.failed_run_note(r, 2),
                         'x86_64/xapic_ipi_test.c:182: halter; pid=700 tid=705 errno=4')
        self.assertEqual(kvm_check.failed_run_note(r, 3), 'no output')
        self.assertIsNone(kvm_check.parse_kvmsft(CHANNEL)[0]['retried'])

    def test_unknown_cpus(self):
        self.assertEqual(kvm_check.unknown_cpus(CONSOLE.splitlines()), {0: 2, 2: 1})

    def test_storm_window(self):
        lines = (['[ 1.0] Uhhuh. NMI received for unknown reason 00 on CPU 3.',
                  '[ 8.5] lab: kvm: host NMI storm on'] + CONSOLE.splitlines()[:2] +
                 ['[ 99.0] lab: kvm: host NMI storm off'] + CONSOLE.splitlines()[2:])
        inside = kvm_check.window(lines, kvm_check.STORM)
        self.assertEqual(kvm_check.unknown_cpus(inside), {0: 1})


if __name__ == '__main__':
    unittest.main()
