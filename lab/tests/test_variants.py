"""lab/config/variants: the one table of the lab's kernels."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import boots  # noqa: E402

# The names the lab builds or boots (kbuild.sh, check, bench, series-check).
USED = ('series', 'instrument', 'bisect', 'i386', 'i386-base', 'series-prod',
        'instrument-prod', 'wide-kernel', 'kasan', 'kcsan', 'widecheck', 'w1-wide', 'w1-i386',
        'w1-allno',
        'full-defconfig-x86_64', 'full-defconfig-i386')


class TestVariants(unittest.TestCase):
    def test_rows(self):
        rows = boots.variants()
        self.assertEqual(set(rows), set(USED))
        for name, row in rows.items():
            self.assertIn(row['arch'], ('x86_64', 'x86', 'i386'), name)
            self.assertEqual(row['qemu'] is None, row['cpu'] is None, name)
            if isinstance(row['config'], list):
                for frag in row['config']:
                    self.assertTrue(os.path.exists(os.path.join(boots.LAB, 'config',
                                                                frag + '.config')), frag)
                self.assertEqual(row['config'][0], 'nmi-test', name)

    def test_base_and_series_build_alike(self):
        """The base shares ccache with the series only with the same fragments."""
        rows = boots.variants()
        for a, b in (('series', 'instrument'), ('series', 'bisect'), ('i386', 'i386-base'),
                     ('series-prod', 'instrument-prod')):
            self.assertEqual(rows[a]['config'], rows[b]['config'])

    def test_unknown_name_is_series(self):
        self.assertEqual(boots.variant_row('hpet'), boots.variant_row('series'))

    def test_kbuild_reads_the_same_row(self):
        """kbuild.sh's reading of the table (its own awk and read) gives the
        arch and fragments variant_row() gives."""
        kbuild = os.path.join(boots.LAB, 'kbuild.sh')
        with open(kbuild) as f:
            text = f.read()
        start = text.index('variants=$top')
        snippet = text[start:text.index('\n', text.index('read -r _ row_arch'))]
        for name in USED + ('hpet',):
            r = subprocess.run(['bash', '-c', 'top=%s label=%s\n%s\necho "$row_arch $row_config"'
                                % (boots.TOP, name, snippet)],
                               capture_output=True, text=True, check=True)
            row = boots.variant_row(name)
            config = row['config'] if isinstance(row['config'], str) else ','.join(row['config'])
            self.assertEqual(r.stdout.split(), [row['arch'], config], name)


if __name__ == '__main__':
    unittest.main()
