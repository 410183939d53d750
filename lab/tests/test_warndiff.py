# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import warndiff  # noqa: E402

BASE = """\
  CC      arch/x86/kernel/nmi.o
../src-w1/arch/x86/kernel/nmi.c:120:6: warning: no previous prototype for 'foo' [-Wmissing-prototypes]
../src-w1/arch/x86/kernel/nmi.c: In function 'bar':
../src-w1/arch/x86/kernel/nmi.c:140:9: note: here
../src-w1/arch/x86/kernel/reboot.c:77:1: warning: symbol 'x' was not declared. Should it be static?
arch/x86/kernel/nmi.o: warning: objtool: exc_nmi+0x1f: call to bar() leaves .noinstr.text section
"""
# The same warnings, moved by the series' new lines, plus two new ones.
SERIES = """\
../src-w1/arch/x86/kernel/nmi.c:180:6: warning: no previous prototype for 'foo' [-Wmissing-prototypes]
../src-w1/arch/x86/kernel/reboot.c:79:1: warning: symbol 'x' was not declared. Should it be static?
arch/x86/kernel/nmi.o: warning: objtool: exc_nmi+0x4b: call to bar() leaves .noinstr.text section
../src-w1/arch/x86/kernel/nmi.c:200:6: warning: no previous prototype for 'baz' [-Wmissing-prototypes]
arch/x86/kernel/nmi.o: warning: objtool: nmi_dispatch+0x10: call to qux() leaves .noinstr.text section
"""
SRC = ['../src-w1', '/work/main/build/src-w1']


class WarnDiffTest(unittest.TestCase):
    def test_normalize(self):
        self.assertEqual(
            warndiff.normalize("../src-w1/arch/x86/kernel/nmi.c:120:6: warning: unused 'a'", SRC),
            ('arch/x86/kernel/nmi.c', "warning: unused 'a'"))
        self.assertEqual(
            warndiff.normalize('/work/main/build/src-w1/include/linux/x.h:3: error: boom', SRC),
            ('include/linux/x.h', 'error: boom'))
        self.assertEqual(
            warndiff.normalize('arch/x86/kernel/nmi.o: warning: objtool: exc_nmi+0x1f: '
                               'call to bar() leaves .noinstr.text section', SRC),
            ('arch/x86/kernel/nmi.o',
             'warning: objtool: exc_nmi: call to bar() leaves .noinstr.text section'))

    def test_not_warnings(self):
        for line in ('  CC      arch/x86/kernel/nmi.o',
                     "../src-w1/arch/x86/kernel/nmi.c: In function 'bar':",
                     '../src-w1/arch/x86/kernel/nmi.c:140:9: note: here',
                     'make[5]: *** [Makefile.build:234: arch/x86/kernel/nmi.o] Error 1'):
            self.assertIsNone(warndiff.normalize(line, SRC), line)

    def test_line_numbers_in_message_ignored(self):
        a = warndiff.normalize('a.c:1:1: warning: conflicts with a.c:10:2 (see b.h:3)')
        b = warndiff.normalize('a.c:5:1: warning: conflicts with a.c:12:2 (see b.h:4)')
        self.assertEqual(a, b)

    def test_moved_warnings_are_not_new(self):
        new = warndiff.new_warnings(warndiff.warnings(BASE, SRC), warndiff.warnings(SERIES, SRC))
        self.assertEqual(new, [
            ('arch/x86/kernel/nmi.c', "warning: no previous prototype for 'baz' "
             '[-Wmissing-prototypes]'),
            ('arch/x86/kernel/nmi.o', 'warning: objtool: nmi_dispatch: call to qux() leaves '
             '.noinstr.text section')])

    def test_repeated_warning_counts(self):
        line = 'x.c:1:1: warning: w\n'
        new = warndiff.new_warnings(warndiff.warnings(line), warndiff.warnings(line * 3))
        self.assertEqual(new, [('x.c', 'warning: w')] * 2)
        self.assertEqual(warndiff.new_warnings(warndiff.warnings(line * 3),
                                               warndiff.warnings(line)), [])

    def test_failed_targets(self):
        log = ('make[5]: *** [/w/src-i386/scripts/Makefile.build:234: arch/x86/kernel/nmi.o] '
               'Error 1\nmake[4]: *** [/w/src-i386/scripts/Makefile.build:471: arch/x86/kernel] '
               'Error 2\nmake: *** [Makefile:236: __sub-make] Error 2\n')
        self.assertEqual(warndiff.failed_targets(log), ['arch/x86/kernel/nmi.o'])



class JustifyTest(unittest.TestCase):
    def test_allowed_warning_is_printed_not_counted(self):
        import re
        allow = [(re.compile(r"nmi\.c: warning: context imbalance in 'f'"), 'sparse')]
        new = [('arch/x86/kernel/nmi.c', "warning: context imbalance in 'f' - wrong count"),
               ('arch/x86/kernel/nmi.c', 'warning: unused variable')]
        counted, justified = warndiff.justify(new, allow)
        self.assertEqual(counted, [('arch/x86/kernel/nmi.c', 'warning: unused variable')])
        self.assertEqual(justified[0][1], 'sparse')


if __name__ == '__main__':
    unittest.main()
