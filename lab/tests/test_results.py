# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import results  # noqa: E402

CHANNEL = """\
LAB plan=ksft
LAB nmis_before=10
KTAP version 1
1..3
# [RUN] something
ok 1 sigreturn_64 # nmis=5
# [FAIL] bad
not ok 2 mov_ss_trap_64 # exit=139 nmis=3
ok 3 amx_64 # SKIP nmis=1
TORTURE_KV int_raised=10 int_serviced=10
TORTURE_KV TORTURE raised=12 serviced=12 lost=0 dup=0 unknown=0 nested=- repeats=- verdict=PASS
NMISTATS before cpu internal unknown nested longest_ns
NMISTATS before 0 5 0 1 100
NMISTATS before all 5 0 1 100
NMISTATS after cpu internal unknown nested longest_ns
NMISTATS after 0 9 1 4 300
NMISTATS after all 9 1 4 300
LAB nmis_after=20
LAB end rc=1
"""


class ResultsTest(unittest.TestCase):
    def test_parse(self):
        r = results.parse(CHANNEL)
        self.assertTrue(r.ended)
        self.assertEqual(r.plan, 3)
        self.assertEqual([(n, s) for n, s, _ in r.tests],
                         [('sigreturn_64', 'pass'), ('mov_ss_trap_64', 'fail'),
                          ('amx_64', 'skip')])
        self.assertEqual(r.diag['mov_ss_trap_64'], ['[FAIL] bad'])
        self.assertEqual(r.lab['nmis_after'], '20')
        self.assertEqual(r.torture['verdict'], 'PASS')
        self.assertEqual(r.torture['int_raised'], '10')
        self.assertTrue(r.torture_line.startswith('TORTURE raised=12'))

    def test_nmistats_delta(self):
        r = results.parse(CHANNEL)
        self.assertEqual(results.nmistats_delta(r),
                         {'internal': 4, 'unknown': 1, 'nested': 3})
        self.assertIsNone(results.nmistats_delta(results.parse('LAB end rc=0')))

    def test_truncated_channel_has_no_end(self):
        r = results.parse(CHANNEL.split('LAB end')[0])
        self.assertFalse(r.ended)

    def test_crlf(self):
        r = results.parse(CHANNEL.replace('\n', '\r\n'))
        self.assertEqual(len(r.tests), 3)
        self.assertTrue(r.ended)



KUNIT = """\
KTAP version 1
1..1
ok 1 sigreturn_64
KUNIT KTAP version 1
KUNIT 1..1
KUNIT     KTAP version 1
KUNIT     # Subtest: x86_nmi_dispatch
KUNIT     1..3
KUNIT     ok 1 nmi_test_a
KUNIT     not ok 2 nmi_test_b
KUNIT     ok 3 nmi_test_c # SKIP no APIC
KUNIT     # module: nmi
KUNIT # x86_nmi_dispatch: pass:1 fail:1 skip:1 total:3
KUNIT not ok 1 x86_nmi_dispatch
"""


class KunitTest(unittest.TestCase):
    def test_kunit_kept_apart_from_selftests(self):
        r = results.parse(KUNIT)
        self.assertEqual([n for n, _, _ in r.tests], ['sigreturn_64'])
        self.assertEqual(r.plan, 1)
        s = r.kunit['x86_nmi_dispatch']
        self.assertEqual(s['plan'], 3)
        self.assertEqual(s['cases'], [('nmi_test_a', 'pass'), ('nmi_test_b', 'fail'),
                                      ('nmi_test_c', 'skip')])
        self.assertIs(s['ok'], False)

    def test_no_suite_result(self):
        r = results.parse('\n'.join(KUNIT.splitlines()[:-1]))
        self.assertIsNone(r.kunit['x86_nmi_dispatch']['ok'])


if __name__ == '__main__':
    unittest.main()
