# SPDX-License-Identifier: GPL-2.0
"""Unit tests of lab/series_check.py's prose rows."""
import contextlib
import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import check  # noqa: E402
import series_check as S  # noqa: E402

PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: A Person <a@example.org>
Date: Thu, 1 Jan 2025 00:00:00 +0000
Subject: [PATCH 1/2] x86/nmi: Do a thing that needs a long
 subject line

Why the thing.
%s
Signed-off-by: A Person <a@example.org>
---
 arch/x86/kernel/nmi.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/arch/x86/kernel/nmi.c b/arch/x86/kernel/nmi.c
--- a/arch/x86/kernel/nmi.c
+++ b/arch/x86/kernel/nmi.c
@@ -1,1 +1,2 @@
 int a;
+%s
"""


def patch(body_extra='', added='int t1;'):
    f = tempfile.NamedTemporaryFile('w', suffix='.patch', delete=False)
    f.write(PATCH % (body_extra, added))
    f.close()
    return f.name


class ProseTest(unittest.TestCase):
    def rows(self, path):
        t = check.Tally()
        with contextlib.redirect_stdout(io.StringIO()):
            n = S.part_prose(t, [path])
        os.unlink(path)
        return n, t

    def test_split(self):
        p = patch('More why.\n')
        subject, body, added = S.split_patch(S.read(p))
        os.unlink(p)
        self.assertEqual(subject, 'x86/nmi: Do a thing that needs a long subject line')
        self.assertEqual(body, ['Why the thing.', 'More why.'])
        self.assertEqual(added, ['int t1;'])

    def test_clean_patch_passes(self):
        n, t = self.rows(patch())
        self.assertEqual((n, t.failed()), (0, 0))

    def test_internal_words_fail(self):
        for text in ('Covers seed scenario T7.', 'Run make check first.',
                     'See lab/windows.py.', 'Found in issue 14.'):
            n, t = self.rows(patch(text + '\n'))
            self.assertGreaterEqual(n, 1, text)
        n, t = self.rows(patch(added='/* T20: a faulting IRET */'))
        self.assertEqual(n, 1)

    def test_long_body_fails(self):
        n, t = self.rows(patch('line\n' * (S.MAX_BODY + 1)))
        self.assertEqual(n, 1)
        n, t = self.rows(patch('line\n' * (S.MAX_BODY - 1)))
        self.assertEqual(n, 0)


COVER = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: A Person <a@example.org>
Subject: [PATCH 00/02] x86/nmi: Things
Cc: B Person <b@example.org>

%s
A Person (2):
  x86/nmi: Do a thing
  x86/nmi: Do another thing
"""


class CoverTest(unittest.TestCase):
    def rows(self, body, source='Subject\n\nWhy.\n'):
        f = tempfile.NamedTemporaryFile('w', suffix='.patch', delete=False)
        f.write(COVER % body)
        f.close()
        src = tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False)
        src.write(source)
        src.close()
        t = check.Tally()
        with contextlib.redirect_stdout(io.StringIO()):
            n = S.part_cover(t, f.name, src.name)
        os.unlink(f.name)
        os.unlink(src.name)
        return n, t

    def test_a_line_b4_would_drop(self):
        n, t = self.rows('Why.\n', 'Subject\n\nthe one that ends a #PF, #BP or\n#DB inside\n')
        self.assertEqual((n, t.failed()), (1, 1))
        self.assertIn('lines 4 start with #', t.rows[0][2])

    def test_body_between_headers_and_shortlog(self):
        self.assertEqual(S.cover_body(COVER % 'Why.\n\nHow.\n'), ['Why.', '', 'How.'])

    def test_long_cover_fails(self):
        self.assertEqual(self.rows('line\n' * S.MAX_COVER)[0], 0)
        n, t = self.rows('line\n' * (S.MAX_COVER + 1))
        self.assertEqual((n, t.failed()), (1, 1))


if __name__ == '__main__':
    unittest.main()
