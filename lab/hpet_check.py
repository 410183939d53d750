# SPDX-License-Identifier: GPL-2.0
"""check.py part "hpet": the HPET NMI hard-lockup detector (nmi_watchdog=hpet).

Boots the x86_64 test kernel (build/out-series: lab/config/nmi-test.config
carries the detector and test_lockup.ko) under QEMU with the HPET in MSI (FSB) mode, watchdog_thresh=THRESH and
plan "hpet" (lab/initramfs/plans/hpet.sh):

  hpet:build            the kernel has the HPET detector and test_lockup.ko
  hpet:probe            the detector came up on the HPET: its "Enabled" and
                        route lines, nmi_watchdog=1, the channel running
  hpet:no-perf          the perf detector was never probed: neither its
                        "Permanently consumes one hw-PMU counter" nor its
                        "Perf NMI watchdog permanently disabled" line
  hpet:no-false-lockup  no lockup report outside the lockup tests, the
                        healthy run included
  hpet:nmis-accounted   over the healthy run, every HPET NMI the detector
                        claimed is one in the "external" column of
                        x86/nmi_stats on the handling CPU, one per period
                        (from the guest's clock), none merged; no unknown
                        NMI on any CPU since boot
  hpet:sysctl           nmi_watchdog=0 stops the HPET NMIs, 2 is refused,
                        1 restarts them; watchdog_thresh=2 reprograms the
                        period
  hpet:handling-cpu     the handling CPU moves through debugfs (a bad CPU is
                        refused with a message) and when it goes offline,
                        and the NMIs follow it
  hpet:lockup-detected  test_lockup.ko holds another CPU with interrupts
                        off: one "Watchdog detected hard LOCKUP on cpu N"
                        for exactly that CPU, within three periods (two
                        after its last hrtimer interrupt, one more because
                        its console output touched the watchdog), and its
                        NMI backtrace
  hpet:lockup-self      the same on the handling CPU itself
  hpet:console          nothing else in the console scan
  hpet:fallback-*       boots where the HPET must not be used, each with its
                        message and the fallback to perf (which, without a
                        PMU, leaves the detector's source "none"; then buddy
                        is switched on at run time and must run): no FSB channel
                        (HPET MSI off), the HPET as clocksource, no HPET (with
                        an unknown nmi_watchdog= option), interrupt remapping
                        with no remapping unit for the HPET (q35 with an
                        intel-iommu: QEMU's DMAR table has no HPET), a TSC the
                        kernel cannot vouch for (TCG has no invariant TSC; the
                        other boots say tsc=reliable)
  hpet:remap-*          q35 with an intel-iommu and a DMAR table, upgraded from
                        the initrd (lab/acpi_upgrade.py), that puts the HPET
                        behind it (plan "hpet", lab.hpet=remap, two vCPUs).
                        QEMU hands the HPET's messages to the APIC without
                        remapping them, so no HPET NMI arrives: these rows
                        check how the kernel programs the remapping, from the
                        remapping table itself (iommu/intel/ir_translation_struct):
    :entry              the detector came up behind remapping (its IRQ in
                        /proc/interrupts as IR-HPET-MSI); the channel's route
                        holds a remappable message whose entry is present,
                        has the HPET's source ID, delivers an NMI (delivery
                        mode 4) and targets the handling CPU's APIC ID
    :move               the handling CPU moved to CPU 1 through debugfs, back
                        and to CPU 1 again at once (the vector domain refuses
                        a move until it freed the last one's old vector), then
                        to CPU 0 when CPU 1 went offline: each time the
                        same entry, still an NMI, now aimed at that CPU's APIC
                        ID, and the route unchanged; a bad CPU refused
    :console            nothing in the console scan
  hpet-soak:*           the detector beside the torture test with all hazards
                        and the user-mode load (plan "hpet", lab.hpet=soak),
                        SOAK_SECS in make check, 600 s in make hpet-soak:
    :torture            the torture test passes and loses no external event
    :no-false-lockup    no hard or soft lockup reported
    :nmis-accounted     every HPET fire claimed by an NMI of its own, one
                        per period (from the guest's clock), the handling
                        CPU unchanged, the channel still running
    :console            nothing else in the console scan
  It ends with an "HPETSOAK ..." line.
  hpet-switch:*         the detector's source switched at run time
                        (kernel.hardlockup_detector) beside the torture test
                        with all hazards (plan "hpet", lab.hpet=switch),
                        SWITCH_STEP s apart in make check (make hpet-switch:
                        60 s):
    :refused            a bad name is refused with a message; perf too where
                        no perf event can send NMIs (TCG has no PMU)
    :buddy              three switches to buddy: the HPET channel stops, no
                        HPET NMI in a whole step
    :hpet               three switches back: the channel runs again, one NMI
                        per period (from the guest's clock)
    :torture            the torture test passes and loses nothing
    :no-false-lockup    no lockup reported outside the lockup test
    :lockup-buddy       then under buddy a CPU held with interrupts off is
                        reported, that CPU only
    :console            nothing else in the console scan
  It ends with an "HPETSWITCH ..." line.

LAB_HPET_TREE names another tree to build and boot (into build/out-hpet);
the default is build/linux, the series, whose kernel make kernel built.
"""

import os
import re
import subprocess
import threading
import time

import acpi_upgrade
import boots
from tally import Later, Tally, summary_line
import report
import scan
import vm

KERNEL = 'series'       # the kernel the boots use (build() may change it)
THRESH = 3              # watchdog_thresh of the boots, seconds
LOCKUP_THRESH = 2       # ... set by the plan before the lockup tests
HEALTHY_SECS = 60       # the healthy run
SOAK_SECS = 90          # the soak of make check (make hpet-soak: 600 s)
MSI = ['-global', 'hpet.msi=on']
IOMMU = ['-machine', 'q35', '-device', 'intel-iommu,intremap=on']
# The detector tells the HPET's NMI by the TSC and needs one the kernel can
# trust: QEMU's TCG offers no invariant TSC (CPUID 0x80000007 EDX bit 8,
# "TCG doesn't support requested feature"), so every boot that should use
# the HPET says tsc=reliable, as an administrator of such a machine would.
TSC = 'tsc=reliable'
LOCKUP_WINDOW = (r'lab: hpet: lockup start', r'lab: hpet: lockup end')
LOCKUP_ALLOW = [r'Watchdog detected hard LOCKUP on cpu \d+',
                r'BUG: soft lockup - CPU#\d+ stuck']
LINE = re.compile(r'^\[\s*(\d+\.\d+)\] (.*)$')


def boot(name, append, qemu_args=(), cpus=None, timeout=600, allow=(), window=None,
         initrd=None):
    """boots.boot() of the hpet kernel, without its initramfs step: run() makes
    the initramfs once, and two boots run at the same time."""
    summary = vm.run(boots.spec(boots.bzimage(KERNEL), initrd or boots.initrd(KERNEL), 'hpet',
                                os.path.join(boots.BUILD, 'runs', name), KERNEL, cpus=cpus,
                                timeout=timeout, quiet=True, append=list(append),
                                qemu_args=list(qemu_args)))
    return boots.Boot(name, summary, os.path.join(boots.BUILD, 'runs', name), allow, window)


def console_lines(b):
    """[(seconds, text)] of the boot's console, printk lines only."""
    out = []
    with open(os.path.join(b.outdir, 'console.log'), 'rb') as f:
        for raw in f.read().decode('utf-8', 'replace').splitlines():
            m = LINE.match(raw.strip())
            if m:
                out.append((float(m.group(1)), m.group(2)))
    return out


def grep(lines, rx):
    r = re.compile(rx)
    return [(t, s) for t, s in lines if r.search(s)]


def num(lab_kv, key, default=None):
    try:
        return int(lab_kv[key])
    except (KeyError, ValueError):
        return default


def build(t):
    tree = os.environ.get('LAB_HPET_TREE', os.path.join(boots.BUILD, 'linux'))
    try:
        with open(os.path.join(tree, 'lib', 'Kconfig.debug')) as f:
            has = 'config HARDLOCKUP_DETECTOR_HPET' in f.read()
    except OSError:
        has = False
    if not has:
        t.add('FAIL', 'hpet:build', '%s has no CONFIG_HARDLOCKUP_DETECTOR_HPET' % tree)
        return False
    global KERNEL
    KERNEL = 'series' if os.path.realpath(tree) == os.path.realpath(
        os.path.join(boots.BUILD, 'linux')) else 'hpet'
    start = time.monotonic()
    # The series' kernel is up to date after make kernel: this only checks.
    r = subprocess.run(['nice', os.path.join(boots.LAB, 'kbuild.sh'),
                        'series' if KERNEL == 'series' else tree, KERNEL],
                       env=dict(os.environ, ARCH='x86_64'), capture_output=True, text=True)
    out = os.path.join(boots.BUILD, 'out-' + KERNEL)
    ko = os.path.exists(os.path.join(out, 'lib', 'test_lockup.ko'))
    try:
        with open(os.path.join(out, '.config')) as f:
            det = 'CONFIG_HARDLOCKUP_DETECTOR_HPET=y' in f.read().splitlines()
    except OSError:
        det = False
    ok = r.returncode == 0 and ko and det
    note = ''
    if r.returncode:
        note = (r.stderr.strip().splitlines() or ['?'])[-1]
    elif not det:
        note = 'no CONFIG_HARDLOCKUP_DETECTOR_HPET=y in %s/.config' % out
    elif not ko:
        note = 'no lib/test_lockup.ko'
    t.add('PASS' if ok else 'FAIL', 'hpet:build',
          note or '%.0f s' % (time.monotonic() - start))
    return ok


def boot_main(t):
    start = time.monotonic()
    b = boot('check-hpet', qemu_args=MSI,
             append=['nmi_watchdog=hpet', TSC, 'watchdog_thresh=%d' % THRESH,
                     'lpj=%d' % vm.host_lpj(), 'lab.hpet_secs=%d' % HEALTHY_SECS,
                     'lab.hpet_lockup_thresh=%d' % LOCKUP_THRESH],
             timeout=HEALTHY_SECS + 400, allow=LOCKUP_ALLOW, window=LOCKUP_WINDOW)
    secs = time.monotonic() - start
    kv = b.results.lab
    lines = console_lines(b)
    period = THRESH * 1000

    # Probe: the HPET source, not perf.
    enabled = grep(lines, r'NMI watchdog: Enabled\. HPET channel \d+ sends the NMIs')
    route = grep(lines, r'NMI watchdog: HPET channel \d+ sends an NMI to CPU \d+ every %d ms'
                 % period)
    ok = (bool(enabled) and bool(route) and kv.get('hpet_sysctl_nmi_watchdog') == '1'
          and kv.get('hpet_running') == '1' and num(kv, 'hpet_period_ms') == period)
    t.add('PASS' if ok else 'FAIL', 'hpet:probe',
          '%s; %s (boot %.0f s, plan %s)' % (
              enabled[0][1] if enabled else 'no "Enabled. HPET" line',
              route[0][1] if route else 'no route line', secs, b.status))
    perf = grep(lines, r'hw-PMU counter|Perf NMI watchdog')
    t.add('PASS' if not perf else 'FAIL', 'hpet:no-perf',
          perf[0][1] if perf else 'no perf watchdog line: no perf event was created')

    # Lockup reports only inside the lockup windows.
    inside, outside = False, []
    for _, s in lines:
        if re.search(LOCKUP_WINDOW[0], s):
            inside = True
        elif re.search(LOCKUP_WINDOW[1], s):
            inside = False
        elif not inside and re.search(dict(scan.PATTERNS)['lockup'], s):
            outside.append(s)
    healthy = 'none outside the lockup tests; healthy run %.0f s' % (
        float(kv.get('hpet_h1_t', 0)) - float(kv.get('hpet_h0_t', 0)))
    t.add('PASS' if not outside and 'hpet_h1_nmis' in kv else 'FAIL', 'hpet:no-false-lockup',
          outside[0] if outside else healthy)

    accounted(t, kv, period)
    sysctl(t, kv, lines)
    handling(t, kv, lines)
    for which, row in (('other', 'hpet:lockup-detected'), ('self', 'hpet:lockup-self')):
        lockup(t, kv, lines, which, row)
    n = b.console_findings()
    t.add('PASS' if n == 0 and b.status == 'pass' else 'FAIL', 'hpet:console',
          'plan %s, %d findings%s' % (b.status, n, (': ' + report.first_finding(b)) if n else ''))
    return secs


def delta(kv, a, b, key):
    x, y = num(kv, 'hpet_%s_%s' % (a, key)), num(kv, 'hpet_%s_%s' % (b, key))
    return None if x is None or y is None else y - x


def accounted(t, kv, period_ms):
    d_nmis, d_fires = delta(kv, 'h0', 'h1', 'nmis'), delta(kv, 'h0', 'h1', 'fires')
    d_ext = delta(kv, 'h0', 'h1', 'ext')
    same_cpu = kv.get('hpet_h0_cpu') == kv.get('hpet_h1_cpu')
    try:
        elapsed = float(kv['hpet_h1_t']) - float(kv['hpet_h0_t'])
    except (KeyError, ValueError):
        elapsed = 0.0
    want = elapsed * 1000 / period_ms
    unknown = num(kv, 'hpet_l1_unknown', num(kv, 'hpet_h1_unknown'))
    ok = (d_nmis is not None and d_nmis > 0 and d_nmis == d_fires == d_ext and same_cpu
          and abs(d_fires - want) <= 1 and unknown == 0)
    t.add('PASS' if ok else 'FAIL', 'hpet:nmis-accounted',
          'healthy %.1f s on CPU %s: HPET NMIs claimed %s, periods %s (clock: %.1f), '
          'external on that CPU %s; unknown since boot %s; claimed late %s, NMIs before '
          'the window %s' % (
              elapsed, kv.get('hpet_h0_cpu'), d_nmis, d_fires, want, d_ext, unknown,
              delta(kv, 'h0', 'h1', 'late'), delta(kv, 'h0', 'h1', 'oow')))


def sysctl(t, kv, lines):
    off = delta(kv, 'off0', 'off1', 'nmis')
    on = delta(kv, 'on0', 'on1', 'nmis')
    thresh = num(kv, 'hpet_lockup_thresh')
    ok = (kv.get('hpet_off_running') == '0' and off == 0 and
          kv.get('hpet_sysctl_bad') == 'refused' and kv.get('hpet_on_running') == '1'
          and on is not None and on >= 1 and thresh == LOCKUP_THRESH and
          num(kv, 'hpet_lockup_period_ms') == 1000 * LOCKUP_THRESH and
          kv.get('hpet_lockup_running') == '1')
    t.add('PASS' if ok else 'FAIL', 'hpet:sysctl',
          'nmi_watchdog=0: running %s, NMIs in %d s: %s; =2 %s; =1: running %s, NMIs %s; '
          'watchdog_thresh=%s: period %s ms' % (
              kv.get('hpet_off_running'), THRESH + 1, off, kv.get('hpet_sysctl_bad'),
              kv.get('hpet_on_running'), on, thresh, kv.get('hpet_lockup_period_ms')))


def handling(t, kv, lines):
    if 'hpet_mv0_cpu' not in kv:
        t.add('FAIL', 'hpet:handling-cpu', 'not run (fewer than 3 CPUs?)')
        return
    msg = grep(lines, r'nmi_watchdog_hpet_cpu=\d+: not a watched CPU')
    mv = (num(kv, 'hpet_mv0_cpu'), delta(kv, 'mv0', 'mv1', 'nmis'), delta(kv, 'mv0', 'mv1', 'ext'))
    gone = num(kv, 'hpet_offline_cpu')
    hp = (num(kv, 'hpet_hp0_cpu'), delta(kv, 'hp0', 'hp1', 'nmis'), delta(kv, 'hp0', 'hp1', 'ext'))
    ok = (kv.get('hpet_cpu_bad') == 'refused' and bool(msg) and
          mv[0] == gone and mv[1] and mv[1] > 0 and mv[1] == mv[2] and
          hp[0] is not None and hp[0] != gone and hp[1] and hp[1] > 0 and hp[1] == hp[2] and
          kv.get('hpet_hp0_cpu') == kv.get('hpet_hp1_cpu'))
    t.add('PASS' if ok else 'FAIL', 'hpet:handling-cpu',
          'bad CPU %s (%s); debugfs -> CPU %s: %s NMIs, %s external there; CPU %s offline '
          '-> CPU %s: %s NMIs, %s external there' % (
              kv.get('hpet_cpu_bad'), msg[0][1] if msg else 'no message', mv[0], mv[1], mv[2],
              gone, hp[0], hp[1], hp[2]))


def lockup(t, kv, lines, which, row):
    cpu = num(kv, 'hpet_lockup_' + which)
    if cpu is None:
        t.add('FAIL', row, 'not run: %s' % kv.get('hpet_lockup', '?'))
        return
    start = re.compile(r'lab: hpet: lockup start cpu=%d\b' % cpu)
    win, inside = [], False
    for ts, s in lines:
        if start.search(s):
            inside = True
        elif inside and re.search(LOCKUP_WINDOW[1], s):
            break
        if inside:
            win.append((ts, s))
    began = grep(win, r'test_lockup: START ')
    reports = grep(win, r'Watchdog detected hard LOCKUP on cpu (\d+)')
    cpus = [int(re.search(r'on cpu (\d+)', s).group(1)) for _, s in reports]
    bt = grep(win, r'NMI backtrace for cpu %d\b' % cpu)
    latency = reports[0][0] - began[0][0] if reports and began else None
    # Two periods after the CPU's last hrtimer interrupt (the check before
    # the lockup may have seen progress), one more because test_lockup's
    # console output touched the watchdog (the check after it is skipped),
    # and a second for TCG.
    period = num(kv, 'hpet_lockup_thresh', LOCKUP_THRESH)
    bound = 3 * period + 1
    ok = (cpus == [cpu] and len(began) == 1 and latency is not None and
          latency <= bound)
    if which == 'other':
        ok = ok and bool(bt)
    t.add('PASS' if ok else 'FAIL', row,
          'CPU %d, period %d s, %d lockup(s): reports for CPUs %s, %s after the lockup '
          'began (bound %d s)%s' % (
              cpu, period, len(began), cpus or 'none',
              '%.2f s' % latency if latency is not None else '-', bound,
              ', NMI backtrace %s' % ('printed' if bt else 'missing')
              if which == 'other' else ', reported from its own NMI'))


FALLBACKS = [
    # (row, QEMU args, kernel command line, console lines that must appear)
    ('hpet:fallback-no-msi', [], ['nmi_watchdog=hpet', TSC],
     [r'not using the HPET: no free HPET channel can send periodic FSB']),
    ('hpet:fallback-clocksource', MSI, ['nmi_watchdog=hpet', TSC, 'clocksource=hpet'],
     [r'not using the HPET: it is the clocksource']),
    ('hpet:fallback-no-hpet', MSI, ['nmi_watchdog=hpet,bogus', TSC, 'hpet=disable'],
     [r'not using the HPET: there is no usable HPET',
      r'nmi_watchdog=: ignoring unknown option "bogus"']),
    ('hpet:fallback-irq-remap', MSI + IOMMU, ['nmi_watchdog=hpet', TSC],
     [r'not using the HPET: interrupt remapping is enabled, and no remapping unit serves '
      r'the HPET']),
    # Without tsc=reliable: TCG's TSC is not invariant.
    ('hpet:fallback-tsc', MSI, ['nmi_watchdog=hpet'],
     [r'not using the HPET: its NMIs are told by the TSC, which is not stable']),
]


def fallback_buddy(kv):
    """Where neither the HPET nor perf could run (TCG has no PMU), the
    detector's source reads "none"; buddy is then taken, and the detector
    runs (nmi_watchdog 1), although nmi_watchdog was read before."""
    return (kv.get('hpet_probe_src') == 'none' and kv.get('hpet_probe_buddy') == 'ok' and
            kv.get('hpet_probe_buddy_now') == 'buddy' and
            kv.get('hpet_probe_buddy_nmi_watchdog') == '1')


def fallbacks(t):
    """One boot per FALLBACKS entry, on one vCPU; rows go to t (anything
    with add(), see Rows)."""
    for row, qargs, append, want in FALLBACKS:
        start = time.monotonic()
        b = boot('check-' + row.replace(':', '-'), cpus=1, qemu_args=qargs, timeout=300,
                 append=append + ['watchdog_thresh=%d' % THRESH, 'lpj=%d' % vm.host_lpj(),
                                  'lab.hpet=probe'])
        secs = time.monotonic() - start
        lines = console_lines(b)
        missing = [w for w in want if not grep(lines, w)]
        hpet_used = grep(lines, r'NMI watchdog: Enabled\. HPET')
        # The perf detector is tried instead (and, without a PMU, fails).
        perf = grep(lines, r'Perf NMI watchdog permanently disabled|hw-PMU counter')
        kv = b.results.lab
        ok = b.status == 'pass' and not missing and not hpet_used and bool(perf) and \
            b.console_findings() == 0 and fallback_buddy(kv)
        note = '%s; then %s; source %s, buddy %s: %s, nmi_watchdog %s (%.0f s)' % (
            '; '.join(s for w in want for _, s in grep(lines, w)[:1]) or
            'missing: ' + ', '.join(missing),
            perf[0][1] if perf else 'perf not tried', kv.get('hpet_probe_src'),
            kv.get('hpet_probe_buddy'), kv.get('hpet_probe_buddy_now'),
            kv.get('hpet_probe_buddy_nmi_watchdog'), secs)
        if hpet_used:
            note = 'the HPET was used: ' + hpet_used[0][1]
        elif b.status != 'pass':
            note = 'plan %s; ' % b.status + note
        elif b.console_findings():
            note = 'console: ' + report.first_finding(b)
        t.add('PASS' if ok else 'FAIL', row, note)


def irte_fields(value):
    """(source ID, destination APIC ID, delivery mode, present) of a
    remapping table row as the plan records it, "SrcID,DstID,IRTE_low" of
    ir_translation_struct; None for "-" or garbage.  The destination is
    the xAPIC one (bits 15:8 of DstID): TCG has no x2APIC."""
    try:
        sid, dst, low = value.split(',')
        dst, low = int(dst, 16), int(low, 16)
    except (AttributeError, ValueError):
        return None
    return sid, (dst >> 8) & 0xff, (low >> 5) & 7, low & 1


def route_index(route):
    """The remapping table index of a remappable-format message address,
    or None when @route is not one (bit 4 clear: compatibility format)."""
    try:
        a = int(route, 16)
    except (TypeError, ValueError):
        return None
    if (a >> 20) != 0xfee or not a & 0x10:
        return None
    return ((a >> 5) & 0x7fff) | (((a >> 2) & 1) << 15)


def remap_rows(t, kv, console_ok, note_console):
    """Rows hpet:remap-* from the LAB values of lab.hpet=remap."""
    apic = (kv.get('hpet_apicids') or '').split(',')

    def entry_ok(tag, cpu):
        """(ok, note) for snapshot @tag: the route's entry aims an NMI at @cpu."""
        route = kv.get('hpet_remap_%s_route' % tag)
        idx = route_index(route)
        f = irte_fields(kv.get('hpet_remap_%s_irte' % tag))
        want = int(apic[cpu]) if cpu < len(apic) and apic[cpu].isdigit() else None
        ok = (idx is not None and str(idx) == kv.get('hpet_remap_%s_index' % tag) and
              f is not None and f == (acpi_upgrade.hpet_sid(), want, 4, 1) and
              kv.get('hpet_remap_%s_cpu' % tag) == str(cpu))
        note = '%s: cpu %s, route %s -> entry %s: %s' % (
            tag, kv.get('hpet_remap_%s_cpu' % tag), route, idx,
            'source %s, APIC ID %s, delivery mode %s, present %s' % f if f else 'none')
        return ok, note

    ok, note = entry_ok('boot', 0)
    # The detector's interrupt is the one /proc/interrupts shows as IR-HPET-MSI.
    proc = kv.get('hpet_remap_proc', '')
    ok = ok and kv.get('hpet_running') == '1' and \
        proc.startswith('%s,IR-HPET-MSI,' % kv.get('hpet_remap_irq'))
    t.add('PASS' if ok else 'FAIL', 'hpet:remap-entry',
          'irq %s (%s); %s' % (kv.get('hpet_remap_irq'), proc or 'not in /proc/interrupts',
                                note))
    oks, notes = [], []
    for tag, cpu in (('moved', 1), ('bounce', 1), ('offline', 0)):
        o, n = entry_ok(tag, cpu)
        oks.append(o and kv.get('hpet_remap_%s_route' % tag) == kv.get('hpet_remap_boot_route'))
        notes.append(n)
    oks.append(kv.get('hpet_remap_bad') == 'refused')
    notes.append('CPU 7 %s' % kv.get('hpet_remap_bad'))
    t.add('PASS' if all(oks) else 'FAIL', 'hpet:remap-move', '; '.join(notes))
    t.add('PASS' if console_ok else 'FAIL', 'hpet:remap-console', note_console)


def remap(t):
    """The detector behind interrupt remapping: one boot, rows to t."""
    start = time.monotonic()
    out = os.path.join(boots.BUILD, 'runs', 'check-hpet-remap')
    os.makedirs(out, exist_ok=True)
    initrd = os.path.join(out, 'initrd-dmar.img')
    acpi_upgrade.prepend(boots.initrd(KERNEL), initrd, [('dmar.aml', acpi_upgrade.dmar())])
    b = boot('check-hpet-remap', cpus=2, qemu_args=MSI + IOMMU, timeout=300, initrd=initrd,
             append=['nmi_watchdog=hpet', TSC, 'intel_iommu=on', 'watchdog_thresh=%d' % THRESH,
                     'lpj=%d' % vm.host_lpj(), 'lab.hpet=remap'])
    findings = b.console_findings()
    note = 'plan %s, %d finding(s)%s (%.0f s)' % (
        b.status, findings, ': ' + report.first_finding(b) if findings else '',
        time.monotonic() - start)
    remap_rows(t, b.results.lab, b.status == 'pass' and findings == 0, note)


def soak(t, secs):
    """The detector beside the torture test for @secs seconds; returns the
    HPETSOAK line."""
    start = time.monotonic()
    b = boot('hpet-soak-%d' % secs, qemu_args=MSI,
             append=['nmi_watchdog=hpet', TSC, 'watchdog_thresh=%d' % THRESH,
                     'lpj=%d' % vm.host_lpj(), 'lab.hpet=soak', 'lab.hpet_secs=%d' % secs],
             timeout=secs + 400)
    kv, tt = b.results.lab, report.torture_fields(b)
    lines = console_lines(b)
    verdicts = []

    def row(ok, name, note):
        verdicts.append(ok)
        t.add('PASS' if ok else 'FAIL', name, note)

    verdict = report.torture_verdict(b)
    lost = num(tt, 'ext_lost')
    row(verdict == 'PASS' and lost == 0 and b.status == 'pass',
        'hpet-soak:torture', '%s; plan %s' % (report.torture_line(b), b.status))

    lockups = grep(lines, dict(scan.PATTERNS)['lockup'])
    row(not lockups and 'hpet_s1_nmis' in kv, 'hpet-soak:no-false-lockup',
        lockups[0][1] if lockups else 'none in %.0f s' % (
              float(kv.get('hpet_s1_t', 0)) - float(kv.get('hpet_s0_t', 0))))

    d_nmis, d_fires = delta(kv, 's0', 's1', 'nmis'), delta(kv, 's0', 's1', 'fires')
    d_ext = delta(kv, 's0', 's1', 'ext')
    try:
        elapsed = float(kv['hpet_s1_t']) - float(kv['hpet_s0_t'])
    except (KeyError, ValueError):
        elapsed = 0.0
    want = elapsed * 1000 / (THRESH * 1000)
    same_cpu = kv.get('hpet_s0_cpu') == kv.get('hpet_s1_cpu')
    ok = (d_nmis is not None and d_nmis > 0 and d_nmis == d_fires and
          abs(d_fires - want) <= 1 and same_cpu and d_ext is not None and d_ext >= d_nmis and
          kv.get('hpet_end_running') == '1')
    row(ok, 'hpet-soak:nmis-accounted',
        '%.1f s on CPU %s: HPET NMIs claimed %s, periods %s (clock: %.1f), external NMIs '
          'serviced on that CPU %s, still running %s; claimed late %s, NMIs before the '
          'window %s' % (
              elapsed, kv.get('hpet_s0_cpu'), d_nmis, d_fires, want, d_ext,
              kv.get('hpet_end_running'), delta(kv, 's0', 's1', 'late'),
              delta(kv, 's0', 's1', 'oow')))
    n = report.torture_console_failures(b)
    row(n == 0 and b.completed(), 'hpet-soak:console',
        '%d findings%s' % (n, (': ' + report.first_finding(b)) if n else ''))
    return summary_line('HPETSOAK', [
        ('secs', secs), ('elapsed', '%.0f' % elapsed), ('hpet_nmis', d_nmis),
        ('hpet_fires', d_fires), ('periods', '%.1f' % want), ('torture_raised', tt.get('raised')),
        ('torture_lost', tt.get('lost')), ('lockups', len(lockups)),
        ('verdict', 'PASS' if all(verdicts) else 'FAIL'),
        ('boot_s', '%.0f' % (time.monotonic() - start))])


SWITCH_STEP = 10        # seconds between two switches of the switching boot
SWITCH_WINDOW = (r'lab: hpet: lockup start', r'lab: hpet: lockup end')


def add(t, ok, name, note):
    t.add('PASS' if ok else 'FAIL', name, note)
    return ok


def switch_refused(t, kv, lines):
    """The sysctl names the HPET at first, refuses a bad name with its
    message, and perf with its message where it cannot run (or takes it)."""
    bad = grep(lines, r'hardlockup_detector=bogus: not one of perf, buddy, hpet')
    perf_msg = grep(lines, r'hardlockup_detector=perf: no perf event can send NMIs')
    perf_ok = (kv.get('hpet_sw_perf') == 'refused' and bool(perf_msg) and
               kv.get('hpet_sw_perf_now') == 'hpet') or \
        (kv.get('hpet_sw_perf') == 'ok' and kv.get('hpet_sw_perf_now') == 'perf')
    return add(t, kv.get('hpet_sw_initial') == 'hpet' and kv.get('hpet_sw_bad') == 'refused' and
               kv.get('hpet_sw_bad_now') == 'hpet' and bool(bad) and perf_ok,
               'hpet-switch:refused', 'initially %s; bogus %s (%s); perf %s (%s)' % (
                   kv.get('hpet_sw_initial'), kv.get('hpet_sw_bad'),
                   bad[0][1] if bad else 'no message', kv.get('hpet_sw_perf'),
                   perf_msg[0][1] if perf_msg else 'no message'))


def switch_to(kv, keys, name, running):
    return all(kv.get('hpet_sw_%s' % k) == 'ok' and kv.get('hpet_sw_%s_now' % k) == name and
               kv.get('hpet_sw_%s_running' % k) == running for k in keys)


def switch_buddy(t, kv, step):
    """Each switch to buddy took and stopped the channel: no HPET NMI in a
    whole step."""
    keys = ('b1', 'b2', 'b3')
    d = delta(kv, 'b0', 'b1', 'nmis')
    return add(t, switch_to(kv, keys, 'buddy', '0') and d == 0, 'hpet-switch:buddy',
               'three switches to buddy: %s; the HPET channel running %s; HPET NMIs in %d s: %s'
               % (','.join(kv.get('hpet_sw_%s_now' % k, '-') for k in keys),
                  ','.join(kv.get('hpet_sw_%s_running' % k, '-') for k in keys), step, d))


def switch_hpet(t, kv):
    """Each switch back to the HPET restarted the channel: one claimed NMI
    per period (from the guest's clock), and it still runs at the end."""
    keys = ('h1', 'h2', 'h3')
    d_nmis, d_fires = delta(kv, 'c0', 'c1', 'nmis'), delta(kv, 'c0', 'c1', 'fires')
    try:
        elapsed = float(kv['hpet_c1_t']) - float(kv['hpet_c0_t'])
    except (KeyError, ValueError):
        elapsed = 0.0
    want = elapsed / THRESH
    ok = (switch_to(kv, keys, 'hpet', '1') and d_nmis is not None and d_nmis > 0 and
          d_nmis == d_fires and abs(d_fires - want) <= 1 and kv.get('hpet_end_running') == '1')
    add(t, ok, 'hpet-switch:hpet',
        'three switches back to hpet, channel running %s; %.1f s: HPET NMIs %s, periods '
        '%s (clock: %.1f)' % (','.join(kv.get('hpet_sw_%s_running' % k, '-') for k in keys),
                             elapsed, d_nmis, d_fires, want))
    return ok, d_nmis, want


def switch_lockups(t, kv, lines):
    """No lockup report outside the lockup test; inside it, under buddy,
    one for the held CPU and none for another.  Returns the false ones."""
    inside, outside, win = False, [], []
    for _, s in lines:
        if re.search(SWITCH_WINDOW[0], s):
            inside = True
        elif re.search(SWITCH_WINDOW[1], s):
            inside = False
        elif inside:
            win.append(s)
        elif re.search(dict(scan.PATTERNS)['lockup'], s):
            outside.append(s)
    add(t, not outside and 'hpet_sw_h2' in kv, 'hpet-switch:no-false-lockup',
        outside[0] if outside else 'none outside the lockup test')
    cpu = num(kv, 'hpet_lockup_buddy')
    cpus = [int(m.group(1)) for m in (re.search(r'Watchdog detected hard LOCKUP on cpu (\d+)', s)
                                      for s in win) if m]
    add(t, cpu is not None and cpus == [cpu] and kv.get('hpet_sw_b3_now') == 'buddy',
        'hpet-switch:lockup-buddy',
        'CPU %s held with interrupts off under buddy: reports for CPUs %s' % (cpu, cpus))
    return outside


def switch(t, step=SWITCH_STEP):
    """The detector's source switched at run time beside the torture test
    (plan "hpet", lab.hpet=switch); returns the HPETSWITCH line."""
    start = time.monotonic()
    b = boot('hpet-switch', qemu_args=MSI,
             append=['nmi_watchdog=hpet', TSC, 'watchdog_thresh=%d' % THRESH,
                     'lpj=%d' % vm.host_lpj(), 'lab.hpet=switch', 'lab.hpet_secs=%d' % step],
             timeout=step * 5 + 400, allow=LOCKUP_ALLOW, window=SWITCH_WINDOW)
    kv, tt = b.results.lab, report.torture_fields(b)
    lines = console_lines(b)
    for _, s in grep(lines, r'lab: hpet: switch to |hardlockup detector: \w+ -> '):
        print('      ' + s)
    rows = Tally(quiet=True)
    switch_refused(rows, kv, lines)
    switch_buddy(rows, kv, step)
    _, d_nmis, want = switch_hpet(rows, kv)
    add(rows, report.torture_verdict(b) == 'PASS' and num(tt, 'ext_lost') == 0,
        'hpet-switch:torture', report.torture_line(b))
    outside = switch_lockups(rows, kv, lines)
    n = report.torture_console_failures(b)
    add(rows, n == 0 and b.completed(), 'hpet-switch:console', 'plan %s, %d findings%s' % (
        b.status, n, (': ' + report.first_finding(b)) if n else ''))
    for v, name, note in rows.rows:
        t.add(v, name, note)
    return summary_line('HPETSWITCH', [
        ('switches', len(grep(lines, r'lab: hpet: switch to \w+: ok'))),
        ('refused', len(grep(lines, r'lab: hpet: switch to \w+: refused'))),
        ('hpet_nmis_under_buddy', delta(kv, 'b0', 'b1', 'nmis')), ('hpet_nmis', d_nmis),
        ('periods', '%.1f' % want), ('torture_raised', tt.get('raised')),
        ('torture_lost', tt.get('lost')), ('false_lockups', len(outside)),
        ('verdict', 'PASS' if rows.failed() == 0 else 'FAIL'),
        ('boot_s', '%.0f' % (time.monotonic() - start))])


def run(t, args=None):
    start = time.monotonic()
    if not build(t):
        return
    built = time.monotonic()
    # The fallback boots are short and the main boot mostly waits in its
    # healthy run: run them side by side (the main boot's checks have
    # seconds of margin).
    rows = Later()
    side = threading.Thread(target=lambda: (fallbacks(rows), remap(rows)))
    boots.ensure_variant(KERNEL)
    side.start()
    boot_main(t)
    side.join()
    rows.replay(t)
    print('      ' + soak(t, getattr(args, 'hpet_soak_seconds', None) or SOAK_SECS))
    print('      ' + switch(t))
    print('      hpet: build %.0f s, boots %.0f s' % (built - start, time.monotonic() - built))


def main(argv=None):
    """make hpet-soak, make hpet-switch: build the HPET kernel, then only the
    soak, or only the switching boot."""
    import argparse
    p = argparse.ArgumentParser(description='the HPET NMI watchdog beside the torture test')
    p.add_argument('--soak', type=int, default=600, help='seconds (default 600)')
    p.add_argument('--switch', type=int, metavar='STEP',
                   help='instead of the soak: switch the detector hpet -> buddy -> hpet '
                        '-> buddy -> hpet STEP seconds apart beside the torture test, '
                        'then a lockup under buddy (HPETSWITCH line)')
    args = p.parse_args(argv)
    t = Tally()
    if not build(t):
        return 1
    boots.ensure_variant(KERNEL)
    print(switch(t, args.switch) if args.switch else soak(t, args.soak))
    return 0 if t.failed() == 0 else 1


if __name__ == '__main__':
    import sys
    sys.exit(main())
