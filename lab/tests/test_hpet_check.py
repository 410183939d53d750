"""Verdict rules of lab/hpet_check.py, fed with recorded LAB values and
console lines of the hpet plan."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import hpet_check as H  # noqa: E402
from tally import Tally  # noqa: E402

# A healthy period as the plan records it: 30 s on CPU 1, 2 s period.
HEALTHY = {'hpet_h0_cpu': '1', 'hpet_h1_cpu': '1', 'hpet_h0_t': '10.0', 'hpet_h1_t': '40.0',
           'hpet_h0_nmis': '5', 'hpet_h1_nmis': '20', 'hpet_h0_fires': '5', 'hpet_h1_fires': '20',
           'hpet_h0_ext': '5', 'hpet_h1_ext': '20', 'hpet_h1_unknown': '0',
           'hpet_h0_late': '0', 'hpet_h1_late': '1', 'hpet_h0_oow': '3', 'hpet_h1_oow': '9'}


def verdict(fn, *args):
    t = Tally(quiet=True)
    fn(t, *args)
    assert len(t.rows) == 1, t.rows
    return t.rows[0][0]


class TestAccounted(unittest.TestCase):
    def test_healthy(self):
        self.assertEqual(verdict(H.accounted, HEALTHY, 2000), 'PASS')

    def test_a_fire_not_claimed(self):
        self.assertEqual(verdict(H.accounted, dict(HEALTHY, hpet_h1_nmis='19'), 2000), 'FAIL')

    def test_claimed_but_not_as_external(self):
        self.assertEqual(verdict(H.accounted, dict(HEALTHY, hpet_h1_ext='19'), 2000), 'FAIL')

    def test_fires_against_the_clock(self):
        # 15 fires in 30 s is a 2 s period, not 1 s.
        self.assertEqual(verdict(H.accounted, HEALTHY, 1000), 'FAIL')

    def test_the_handling_cpu_moved(self):
        self.assertEqual(verdict(H.accounted, dict(HEALTHY, hpet_h1_cpu='2'), 2000), 'FAIL')

    def test_an_unknown_nmi(self):
        self.assertEqual(verdict(H.accounted, dict(HEALTHY, hpet_h1_unknown='1'), 2000), 'FAIL')

    def test_nothing_recorded(self):
        self.assertEqual(verdict(H.accounted, {}, 2000), 'FAIL')


SYSCTL = {'hpet_off_running': '0', 'hpet_off0_nmis': '7', 'hpet_off1_nmis': '7',
          'hpet_sysctl_bad': 'refused', 'hpet_on_running': '1', 'hpet_on0_nmis': '7',
          'hpet_on1_nmis': '9', 'hpet_lockup_thresh': str(H.LOCKUP_THRESH),
          'hpet_lockup_period_ms': str(1000 * H.LOCKUP_THRESH), 'hpet_lockup_running': '1'}


class TestSysctl(unittest.TestCase):
    def test_off_bad_on(self):
        self.assertEqual(verdict(H.sysctl, SYSCTL, []), 'PASS')

    def test_nmis_while_off(self):
        self.assertEqual(verdict(H.sysctl, dict(SYSCTL, hpet_off1_nmis='8'), []), 'FAIL')

    def test_bad_value_taken(self):
        self.assertEqual(verdict(H.sysctl, dict(SYSCTL, hpet_sysctl_bad='accepted'), []),
                         'FAIL')

    def test_no_nmi_after_on(self):
        self.assertEqual(verdict(H.sysctl, dict(SYSCTL, hpet_on1_nmis='7'), []), 'FAIL')

    def test_period_not_following_the_threshold(self):
        self.assertEqual(verdict(H.sysctl, dict(SYSCTL, hpet_lockup_period_ms='10000'), []),
                         'FAIL')


HANDLING = {'hpet_cpu_bad': 'refused', 'hpet_mv0_cpu': '2', 'hpet_mv0_nmis': '1',
            'hpet_mv1_nmis': '4', 'hpet_mv0_ext': '1', 'hpet_mv1_ext': '4',
            'hpet_offline_cpu': '2', 'hpet_hp0_cpu': '0', 'hpet_hp1_cpu': '0',
            'hpet_hp0_nmis': '4', 'hpet_hp1_nmis': '8', 'hpet_hp0_ext': '4', 'hpet_hp1_ext': '8'}
HANDLING_LINES = [(12.0, 'nmi_watchdog_hpet_cpu=7: not a watched CPU')]


class TestHandling(unittest.TestCase):
    def test_moved_then_hotplugged(self):
        self.assertEqual(verdict(H.handling, HANDLING, HANDLING_LINES), 'PASS')

    def test_no_message_for_the_bad_cpu(self):
        self.assertEqual(verdict(H.handling, HANDLING, []), 'FAIL')

    def test_stayed_on_the_offline_cpu(self):
        self.assertEqual(verdict(H.handling, dict(HANDLING, hpet_hp0_cpu='2', hpet_hp1_cpu='2'),
                                 HANDLING_LINES), 'FAIL')

    def test_no_nmis_after_hotplug(self):
        self.assertEqual(verdict(H.handling, dict(HANDLING, hpet_hp1_nmis='4', hpet_hp1_ext='4'),
                                 HANDLING_LINES), 'FAIL')

    def test_not_run(self):
        self.assertEqual(verdict(H.handling, {}, []), 'FAIL')


def lockup_lines(cpu, reported, after, backtrace=True):
    lines = [(50.0, 'lab: hpet: lockup start cpu=%d' % cpu),
             (50.5, 'test_lockup: START on CPU%d' % cpu)]
    for c in reported:
        lines.append((50.5 + after, 'Watchdog detected hard LOCKUP on cpu %d' % c))
    if backtrace:
        lines.append((50.6 + after, 'NMI backtrace for cpu %d' % cpu))
    lines.append((60.0, 'lab: hpet: lockup end'))
    return lines


class TestLockup(unittest.TestCase):
    KV = {'hpet_lockup_other': '2', 'hpet_lockup_self': '1',
          'hpet_lockup_thresh': str(H.LOCKUP_THRESH)}

    def rows(self, which, lines):
        t = Tally(quiet=True)
        H.lockup(t, self.KV, lines, which, 'hpet:lockup-' + which)
        return t.rows[0]

    def test_reported_for_that_cpu_only(self):
        self.assertEqual(self.rows('other', lockup_lines(2, [2], 4.0))[0], 'PASS')

    def test_reported_for_another_cpu_too(self):
        self.assertEqual(self.rows('other', lockup_lines(2, [2, 0], 4.0))[0], 'FAIL')

    def test_reported_too_late(self):
        self.assertEqual(self.rows('other', lockup_lines(2, [2], 3 * H.LOCKUP_THRESH + 2.0))[0],
                         'FAIL')

    def test_no_backtrace_of_the_other_cpu(self):
        self.assertEqual(self.rows('other', lockup_lines(2, [2], 4.0, backtrace=False))[0],
                         'FAIL')

    def test_the_handling_cpu_reports_itself(self):
        self.assertEqual(self.rows('self', lockup_lines(1, [1], 4.0, backtrace=False))[0],
                         'PASS')

    def test_no_report(self):
        self.assertEqual(self.rows('other', lockup_lines(2, [], 4.0))[0], 'FAIL')


# lab.hpet=remap as recorded on the series (two vCPUs, APIC IDs 0 and 1).
REMAP = {'hpet_running': '1', 'hpet_remap_irq': '24', 'hpet_remap_proc': '24,IR-HPET-MSI,2-edge',
         'hpet_apicids': '0,1',
         'hpet_remap_boot_cpu': '0', 'hpet_remap_boot_route': '0xfee001f8',
         'hpet_remap_boot_index': '15', 'hpet_remap_boot_irte': 'f0:1f.0,00000000,0000000000200089',
         'hpet_remap_moved_cpu': '1', 'hpet_remap_moved_route': '0xfee001f8',
         'hpet_remap_moved_index': '15',
         'hpet_remap_moved_irte': 'f0:1f.0,00000100,0000010000230089',
         'hpet_remap_bounce_cpu': '1', 'hpet_remap_bounce_route': '0xfee001f8',
         'hpet_remap_bounce_index': '15',
         'hpet_remap_bounce_irte': 'f0:1f.0,00000100,0000010000240089',
         'hpet_remap_bad': 'refused',
         'hpet_remap_offline_cpu': '0', 'hpet_remap_offline_route': '0xfee001f8',
         'hpet_remap_offline_index': '15',
         'hpet_remap_offline_irte': 'f0:1f.0,00000000,0000000000200089'}


def remap_verdicts(kv, console_ok=True):
    t = Tally(quiet=True)
    H.remap_rows(t, kv, console_ok, '')
    return {r[1]: r[0] for r in t.rows}


class TestRemap(unittest.TestCase):
    def test_recorded(self):
        self.assertEqual(remap_verdicts(REMAP), {'hpet:remap-entry': 'PASS',
                                                 'hpet:remap-move': 'PASS',
                                                 'hpet:remap-console': 'PASS'})

    def test_a_kernel_that_refuses_remapping(self):
        v = remap_verdicts({'hpet_running': '0'})
        self.assertEqual(v['hpet:remap-entry'], 'FAIL')
        self.assertEqual(v['hpet:remap-move'], 'FAIL')

    def test_what_a_row_must_catch(self):
        irte = 'f0:1f.0,%s,00000000002%s'
        for row, key, value, what in (
                ('entry', 'hpet_remap_boot_irte', irte % ('00000000', '00009'), 'fixed delivery'),
                ('entry', 'hpet_remap_boot_route', '0xfee00000', 'compatibility format'),
                ('entry', 'hpet_remap_irq', '25', 'another interrupt than the listed one'),
                ('move', 'hpet_remap_moved_irte', irte % ('00000000', '00089'),
                 'the entry did not follow'),
                # hld.cpu says CPU 1, the entry still aims at CPU 0.
                ('move', 'hpet_remap_bounce_irte', irte % ('00000000', '30089'),
                 'a move left pending'),
                ('move', 'hpet_remap_offline_route', '0xfee00218', 'the route rewritten'),
                ('move', 'hpet_remap_bad', 'accepted', 'a bad CPU accepted')):
            with self.subTest(what):
                self.assertEqual(remap_verdicts(dict(REMAP, **{key: value}))['hpet:remap-' + row],
                                 'FAIL')

    def test_console(self):
        self.assertEqual(remap_verdicts(REMAP, False)['hpet:remap-console'], 'FAIL')

    def test_route_index(self):
        self.assertEqual(H.route_index('0xfee001f8'), 15)
        self.assertEqual(H.route_index('0xfee0001c'), 0x8000)
        self.assertIsNone(H.route_index('0xfee01000'))
        self.assertIsNone(H.route_index('-'))


if __name__ == '__main__':
    unittest.main()


# The switching boot as the plan records it: 3 s period, 10 s steps.
SWITCHED = {'hpet_sw_initial': 'hpet', 'hpet_sw_bad': 'refused', 'hpet_sw_bad_now': 'hpet',
            'hpet_sw_perf': 'refused', 'hpet_sw_perf_now': 'hpet',
            'hpet_b0_nmis': '4', 'hpet_b1_nmis': '4', 'hpet_c0_t': '20.0', 'hpet_c1_t': '30.5',
            'hpet_c0_nmis': '4', 'hpet_c1_nmis': '7', 'hpet_c0_fires': '4', 'hpet_c1_fires': '7',
            'hpet_end_running': '1', 'hpet_lockup_buddy': '2'}
for _k in ('b1', 'b2', 'b3'):
    SWITCHED.update({'hpet_sw_' + _k: 'ok', 'hpet_sw_%s_now' % _k: 'buddy',
                     'hpet_sw_%s_running' % _k: '0'})
for _k in ('h1', 'h2', 'h3'):
    SWITCHED.update({'hpet_sw_' + _k: 'ok', 'hpet_sw_%s_now' % _k: 'hpet',
                     'hpet_sw_%s_running' % _k: '1'})
REFUSALS = [(5.0, 'NMI watchdog: hardlockup_detector=bogus: not one of perf, buddy, hpet'),
            (5.1, 'NMI watchdog: hardlockup_detector=perf: no perf event can send NMIs here (-2)')]
LOCKUP_BUDDY = [(40.0, 'lab: hpet: lockup start cpu=2 secs=10'),
                (45.0, 'NMI watchdog: Watchdog detected hard LOCKUP on cpu 2'),
                (51.0, 'lab: hpet: lockup end cpu=2')]


class TestSwitch(unittest.TestCase):
    def test_refusals(self):
        self.assertEqual(verdict(H.switch_refused, SWITCHED, REFUSALS), 'PASS')

    def test_a_bad_name_taken(self):
        kv = dict(SWITCHED, hpet_sw_bad='ok', hpet_sw_bad_now='buddy')
        self.assertEqual(verdict(H.switch_refused, kv, REFUSALS), 'FAIL')

    def test_refused_without_a_message(self):
        self.assertEqual(verdict(H.switch_refused, SWITCHED, REFUSALS[1:]), 'FAIL')

    def test_perf_taken_where_it_runs(self):
        kv = dict(SWITCHED, hpet_sw_perf='ok', hpet_sw_perf_now='perf')
        self.assertEqual(verdict(H.switch_refused, kv, REFUSALS[:1]), 'PASS')

    def test_a_kernel_without_the_sysctl(self):
        self.assertEqual(verdict(H.switch_refused, {'hpet_sw_initial': ''}, []), 'FAIL')

    def test_buddy_stops_the_channel(self):
        self.assertEqual(verdict(H.switch_buddy, SWITCHED, 10), 'PASS')

    def test_hpet_nmis_under_buddy(self):
        self.assertEqual(verdict(H.switch_buddy, dict(SWITCHED, hpet_b1_nmis='5'), 10), 'FAIL')

    def test_channel_still_running_under_buddy(self):
        kv = dict(SWITCHED, hpet_sw_b2_running='1')
        self.assertEqual(verdict(H.switch_buddy, kv, 10), 'FAIL')

    def test_back_to_hpet(self):
        self.assertEqual(verdict(H.switch_hpet, SWITCHED), 'PASS')

    def test_no_nmis_after_the_switch_back(self):
        kv = dict(SWITCHED, hpet_c1_nmis='4', hpet_c1_fires='4')
        self.assertEqual(verdict(H.switch_hpet, kv), 'FAIL')

    def test_a_fire_not_claimed_after_the_switch_back(self):
        self.assertEqual(verdict(H.switch_hpet, dict(SWITCHED, hpet_c1_nmis='6')), 'FAIL')

    def lockups(self, kv, lines):
        t = Tally(quiet=True)
        H.switch_lockups(t, dict(kv, hpet_sw_h2='ok'), lines)
        return [v for v, _, _ in t.rows]

    def test_the_held_cpu_reported(self):
        self.assertEqual(self.lockups(SWITCHED, LOCKUP_BUDDY), ['PASS', 'PASS'])

    def test_a_false_lockup_during_the_switches(self):
        lines = [(12.0, 'NMI watchdog: Watchdog detected hard LOCKUP on cpu 1')] + LOCKUP_BUDDY
        self.assertEqual(self.lockups(SWITCHED, lines), ['FAIL', 'PASS'])

    def test_buddy_missed_the_lockup(self):
        self.assertEqual(self.lockups(SWITCHED, LOCKUP_BUDDY[::2]), ['PASS', 'FAIL'])

    def test_buddy_reported_another_cpu(self):
        lines = LOCKUP_BUDDY[:2] + [(46.0, 'NMI watchdog: Watchdog detected hard LOCKUP on cpu 3'),
                                    LOCKUP_BUDDY[2]]
        self.assertEqual(self.lockups(SWITCHED, lines), ['PASS', 'FAIL'])


class TestFallbackBuddy(unittest.TestCase):
    KV = {'hpet_probe_src': 'none', 'hpet_probe_buddy': 'ok', 'hpet_probe_buddy_now': 'buddy',
          'hpet_probe_buddy_nmi_watchdog': '1'}

    def test_buddy_runs_after_no_source(self):
        self.assertTrue(H.fallback_buddy(self.KV))

    def test_the_read_of_nmi_watchdog_turned_it_off(self):
        self.assertFalse(H.fallback_buddy(dict(self.KV, hpet_probe_buddy_nmi_watchdog='0')))

    def test_buddy_refused(self):
        self.assertFalse(H.fallback_buddy(dict(self.KV, hpet_probe_buddy='refused',
                                               hpet_probe_buddy_now='none')))

    def test_a_kernel_without_the_sysctl(self):
        self.assertFalse(H.fallback_buddy({'hpet_probe_src': ''}))
