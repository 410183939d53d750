# SPDX-License-Identifier: GPL-2.0
"""What one injection should do and did: the expected outcome per address
(Expect, expect_for), the verdict (judge), the Scenario that follows the
outer NMI and every delivery to the outer NMI's return, and the summaries.
"""

import time

from gdbstub import Stuck, frame, regs_diff
from kcode import (CONTEXT_REGS, GPRS_NO_SP, KERNEL_CS, KERNEL_DS, SAVED_FRAME, SLOT_FLAG,
                   WORK_FRAME)


class Expect:
    """Expected outcome of one injection scenario.

    deliveries: where each injected NMI is taken, in order: 'here' (at the
    instruction it was injected on), an address, 'user-ctx' (the outer's
    interrupted user context), 'kernel-outside' (kernel mode, outside
    asm_exc_nmi) -- the outer's own delivery is not listed.
    effect: 'latched', 'nested', 'ignored', 'first', 'c-latch' (for the report)
    d: expected counter deltas over the whole scenario.
    redirect: for an NMI taken at once: True if it must redirect the outer's
    working frame to nmi_repeat, False if it must leave it alone, None when
    the outer is not on the IST path.
    """

    def __init__(self, effect, deliveries, nmi, nested=0, repeats=0, latched=0,
                 redirect=None):
        self.effect = effect
        self.deliveries = deliveries
        self.d = {'nmi': nmi, 'nested': nested, 'repeats': repeats, 'latched': latched}
        self.redirect = redirect

    def __repr__(self):
        return 'Expect(%s, %s, %s)' % (self.effect, self.deliveries, self.d)


def expect_for(variant, addr, layout, knob, masked, fastret=False):
    """The outcome the entry code prescribes (see the module docstring).

    masked: whether NMIs are still masked by the hardware when the outer
    (or, for the nested variants, the nested NMI) is at addr; the caller
    derives it from the trace of the path (instructions before the unmask
    point), so it is a property of the code, not of the observation.
    fastret: traps in NMI context return without IRET (error_return's
    return in NMI context, nmi_trap_iret=0): a trap in the handler then
    unmasks nothing, and an NMI that arrives while NMIs are masked waits for
    the outer NMI's own return -- to user mode (user outer) or its final
    IRETQ (kernel outer) -- where it is taken as a new first NMI.
    """
    L = layout
    variant = base_variant(variant)
    if variant in ('kernel', 'kernel-gap'):
        if masked:
            if knob:
                return Expect('latched', [L.label1], nmi=2, nested=1, repeats=1)
            return Expect('latched', ['kernel-ctx'], nmi=2)
        return Expect('nested', ['here'], nmi=2, nested=1, repeats=1, redirect=True)
    if variant == 'repeat':
        # Prelude: a nested NMI at label1 (redirect, +1 nested, +1 repeat).
        if L.nmi_repeat <= addr < L.nmi_repeat_end:
            return Expect('ignored', ['here', 'here'], nmi=2, nested=1, repeats=1,
                          redirect=False)
        return Expect('nested', ['here', 'here'], nmi=3, nested=2, repeats=2, redirect=True)
    if variant == 'nested':
        return Expect('latched', ['here', L.label1], nmi=2, nested=2, repeats=1)
    if variant == 'nested-final':
        return Expect('latched', ['here', L.final], nmi=2, nested=2, repeats=1)
    if variant == 'nested-repeat':
        return Expect('latched', ['here', 'here', L.nmi_repeat], nmi=2, nested=1, repeats=1)
    if variant == 'user':
        return Expect('latched', ['user-ctx'], nmi=2)
    if variant in ('user-hz', 'user-int3', 'user-pf', 'user-fastret'):
        if masked and fastret:
            # Held by the CPU until the IRET to user mode.
            return Expect('latched', ['user-ctx'], nmi=2)
        if masked:
            # Taken after the trap's IRET, inside the handler: exc_nmi's
            # latch holds it back.
            return Expect('c-latch', ['kernel-outside'], nmi=2, latched=1)
        if variant == 'user-hz':
            return Expect('first', ['here'], nmi=2, redirect=None)
        return Expect('c-latch', ['here'], nmi=2, latched=1, redirect=None)
    if variant in ('kernel-int3', 'kernel-pf', 'kernel-fastret'):
        if masked and fastret:
            # Held by the CPU until the outer's final IRETQ.
            return Expect('latched', ['kernel-ctx'], nmi=2)
        if masked:
            return Expect('latched', ['kernel-outside'], nmi=2, nested=1, repeats=1)
        return Expect('nested', ['here'], nmi=2, nested=1, repeats=1, redirect=True)
    raise ValueError(variant)


def base_variant(variant):
    """'kernel-gap/pti' -> 'kernel-gap': the same scenario in another boot."""
    return variant.split('/')[0]


def delivery_matches(want, got, ctx):
    """want: an Expect delivery; got: {'rip','cs'}; ctx: {'here','user','kernel', 'range'}."""
    rip, cs = got['rip'], got['cs']
    if want == 'here':
        return rip == ctx['here'] and (cs & 3) == ctx.get('here_cpl', 0)
    if want == 'user-ctx':
        return (cs & 3) == 3 and rip == ctx['outer_rip']
    if want == 'kernel-ctx':
        return (cs & 3) == 0 and rip == ctx['outer_rip']
    if want == 'kernel-outside':
        lo, hi = ctx['range']
        return (cs & 3) == 0 and not lo <= rip < hi
    return (cs & 3) == 0 and rip == want


def judge(exp, obs, ctx):
    """Compare an observation with the expectation; returns a list of reasons.

    obs: {'deliveries': [{'rip','cs','at'}...] (injected NMIs only, in order),
          'delta': {'nmi','nested','repeats','latched'},
          'problems': [str] (checks done while running: registers, frames),
          'heres': [address of each injection]}
    """
    reasons = list(obs.get('problems', []))
    dl = obs['deliveries']
    want = exp.deliveries
    if len(dl) != len(want):
        reasons.append('%d NMI deliveries after the outer, expected %d (%s)' % (
            len(dl), len(want), ', '.join(ctx['fmt'](d['rip']) for d in dl) or 'none'))
    for i, (w, d) in enumerate(zip(want, dl)):
        c = dict(ctx)
        c['here'] = obs['heres'][i] if i < len(obs['heres']) else None
        c['here_cpl'] = obs.get('here_cpl', [0] * len(want))[i] \
            if i < len(obs.get('here_cpl', [])) else 0
        if not delivery_matches(w, d, c):
            reasons.append('NMI #%d taken at %s (cs %#x), expected %s' % (
                i + 1, ctx['fmt'](d['rip']), d['cs'],
                w if isinstance(w, str) else ctx['fmt'](w)))
    for k, v in exp.d.items():
        got = obs['delta'].get(k)
        if got != v:
            reasons.append('%s %+d, expected %+d' % (k, got if got is not None else 0, v))
    return reasons


def sample_addresses(classified, n):
    """Deterministic subset of n addresses, spread over the regions.

    classified: [(address, region)] in address order.  Round robin over the
    regions in order; inside a region, both ends first, then the middle, the
    quarters and so on, so that each region contributes its first and last
    instruction before anything else.
    """
    if n <= 0:
        return []
    by_region = {}
    order = []
    for a, r in classified:
        if r not in by_region:
            by_region[r] = []
            order.append(r)
        by_region[r].append(a)

    def spread(lst):
        # Both ends, then the middle, then the quarters, ...
        m = len(lst)
        idx, seen = [], set()

        def add(p):
            if 0 <= p < m and p not in seen:
                seen.add(p)
                idx.append(p)
        add(0)
        add(m - 1)
        k = 2
        while len(idx) < m and k <= 2 * m:
            for j in range(1, k, 2):
                add(j * (m - 1) // k)
            k *= 2
        for p in range(m):
            add(p)
        return [lst[p] for p in idx]

    queues = {r: spread(v) for r, v in by_region.items()}
    out = []
    while len(out) < n and any(queues.values()):
        for r in order:
            if queues[r] and len(out) < n:
                out.append(queues[r].pop(0))
    return sorted(out)


class ProblemList(list):
    """Problems of one scenario: each distinct message once, at most 12."""

    def append(self, msg):
        if msg not in self and len(self) < 12:
            super().append(msg)


class Scenario:
    """One outer NMI and what is injected into it, run on a Guest."""

    def __init__(self, runner, guest):
        self.R = runner
        self.G = guest
        self.gdb = guest.gdb
        L = runner.layout
        self.L = L
        self.observers = {L.start, L.final}
        self.deliveries = []
        self.ist_ctx = []
        self.final_irets = []
        self.known = {}
        self.regs = None
        self.pending_final = None
        self.problems = ProblemList()

    # -- stepping with observation --
    def refresh(self):
        self.regs = self.gdb.regs()
        return self.regs

    @property
    def pc(self):
        return self.regs['rip']

    def observe(self, prev_pc, prev_frame=None):
        """Called on every arrival; records NMI deliveries and final IRETQs."""
        L, r = self.L, self.regs
        self._retire_final()
        if r['rip'] == L.start and (r['cs'] & 3) == 0:
            fr = frame(self.G.kread64(r['rsp'], 5))
            if prev_pc == L.start and prev_frame == fr:
                return
            top = r['rsp'] + 40
            if self.R.top is None:
                self.R.top = top
            elif top != self.R.top:
                self.problems.append('NMI at %s with stack pointer %#x, not the NMI stack top-40'
                                     % (self.R.fmt(fr['rip']), r['rsp']))
            flag = self.G.kread64(self.R.top - SLOT_FLAG)[0]
            d = dict(fr)
            d['flag'] = flag
            d['regs'] = dict(r)
            self.deliveries.append(d)
            known = self.known.get((fr['rip'], fr['rsp']))
            if known is not None:
                bad = regs_diff(known, r, GPRS_NO_SP)
                if bad:
                    self.problems.append('registers at the NMI taken at %s differ from that '
                                         'context: %s' % (self.R.fmt(fr['rip']), ', '.join(bad)))
                if fr['rflags'] != known['eflags'] or fr['cs'] != known['cs'] or \
                        fr['ss'] != known['ss']:
                    self.problems.append('NMI frame at %s: rflags/cs/ss %#x/%#x/%#x, context '
                                         'has %#x/%#x/%#x' % (
                                             self.R.fmt(fr['rip']), fr['rflags'], fr['cs'],
                                             fr['ss'], known['eflags'], known['cs'],
                                             known['ss']))
            if (fr['cs'] & 3) == 0 and flag == 0 and fr['rip'] != L.final and \
                    not L.nmi_repeat <= fr['rip'] < L.nmi_repeat_end:
                self.ist_ctx.append(fr)
            return
        if r['rip'] == L.final and (r['cs'] & 3) == 0:
            # Checked now; whether the IRETQ went through is known at the
            # next arrival (a nested NMI may interrupt it first).
            top = self.R.top
            work = frame(self.G.kread64(r['rsp'], 5))
            saved = frame(self.G.kread64(top - SAVED_FRAME, 5))
            flag = self.G.kread64(top - SLOT_FLAG)[0]
            if r['rsp'] != top - WORK_FRAME:
                self.problems.append('final IRETQ with rsp %#x, not top-120' % r['rsp'])
            if flag:
                self.problems.append('final IRETQ with "NMI executing" still set')
            if not self.ist_ctx:
                self.problems.append('final IRETQ of an NMI that was not seen entering')
                return
            ctx = self.ist_ctx[-1]
            if saved != ctx:
                self.problems.append('saved frame at the final IRETQ is %s, interrupted '
                                     'context was %s' % (self.R.ffmt(saved), self.R.ffmt(ctx)))
            if work != ctx and not (work['rip'] == L.nmi_repeat and work['cs'] == KERNEL_CS and
                                    work['rsp'] == top - SAVED_FRAME and
                                    work['ss'] == KERNEL_DS):
                self.problems.append('final IRETQ goes to %s, neither the interrupted context '
                                     '%s nor nmi_repeat' % (self.R.ffmt(work), self.R.ffmt(ctx)))
            self.pending_final = (r['rsp'], work == ctx, work['rip'])

    def _retire_final(self):
        """The IRETQ at nmi_final_iret we stopped on last time has executed
        unless we are now in a nested NMI that interrupted it."""
        if self.pending_final is None:
            return
        r, L = self.regs, self.L
        if r['rip'] == L.start and (r['cs'] & 3) == 0:
            fr = frame(self.G.kread64(r['rsp'], 5))
            if fr['rip'] == L.final and fr['rsp'] == self.pending_final[0]:
                self.pending_final = None       # interrupted: it will be seen again
                return
        if r['rip'] == L.final and r['rsp'] == self.pending_final[0]:
            return                              # still there (stepped in place?)
        _, to_ctx, rip = self.pending_final
        self.pending_final = None
        self.final_irets.append(rip)
        if to_ctx and self.ist_ctx:
            self.ist_ctx.pop()

    def step(self):
        prev = self.pc
        prev_frame = None
        if prev == self.L.start:
            prev_frame = frame(self.G.kread64(self.regs['rsp'], 5))
        self.gdb.step()
        self.refresh()
        self.observe(prev, prev_frame)

    def run_until(self, pred, targets, what, timeout=None):
        """Run (observing) until pred() holds at a stop.  targets: addresses
        to break on besides the observers."""
        timeout = timeout or self.R.args.step_timeout
        self.G.set_bps(self.observers | set(targets))
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise Stuck('did not reach %s (at %s)' % (what, self.R.fmt(self.pc)))
            if self.pc in self.G.bps:
                self.step()         # single-stepping overrides breakpoints
                continue
            if not self.gdb.cont(max(1.0, deadline - time.monotonic())):
                self.refresh()
                raise Stuck('did not reach %s (stopped at %s)' % (what, self.R.fmt(self.pc)))
            self.refresh()
            self.observe(None)

    def step_noirq(self):
        """One step with interrupts and NMIs held off (Qqemu.sstep=0x7)."""
        self.gdb.sstep(0x7)
        try:
            self.step()
        finally:
            self.gdb.sstep(0x1)

    def finish(self, p0):
        """Run until the interrupted context p0 is resumed for the last time.

        Each return is caught on the IRETQ itself and stepped with interrupts
        held off, so the registers are compared at the very instruction
        boundary the IRETQ returns to, before a timer interrupt (or a
        context switch behind it) can change anything.  Then one step with
        interrupts allowed: a pending NMI is taken before anything else, and
        then its return is awaited the same way.  Returns the number of
        returns to p0 seen."""
        sites = self.R.iret_sites
        ctx = frame([p0['rip'], p0['cs'], p0['eflags'], p0['rsp'], p0['ss']])
        what = 'return to the interrupted context %s' % self.R.fmt(p0['rip'])

        def at_return():
            if self.pc not in sites:
                return False
            fr = frame(self.G.kread64(self.regs['rsp'], 5))
            return (fr['rip'], fr['cs'], fr['rsp']) == (ctx['rip'], ctx['cs'], ctx['rsp'])

        returns = 0
        while True:
            self.run_until(at_return, sites, what)
            fr = frame(self.G.kread64(self.regs['rsp'], 5))
            if fr != ctx:
                self.problems.append('IRETQ to the interrupted context with frame %s rflags %#x '
                                     'ss %#x, expected rflags %#x ss %#x' % (
                                         self.R.ffmt(fr), fr['rflags'], fr['ss'],
                                         ctx['rflags'], ctx['ss']))
            self.step_noirq()
            returns += 1
            bad = regs_diff(p0, self.regs, CONTEXT_REGS)
            if bad:
                self.problems.append('interrupted context registers changed (return %d): %s'
                                     % (returns, ', '.join(bad)))
            n = len(self.deliveries)
            self.step()         # interrupts allowed: a pending NMI comes first
            if len(self.deliveries) == n:
                return returns
            if returns > 8:
                raise Stuck('NMIs keep coming at %s' % self.R.fmt(p0['rip']))

    def at(self, addr, rsp=None):
        return lambda: self.pc == addr and (rsp is None or self.regs['rsp'] == rsp)

    def inject(self):
        """HMP nmi, then one step with interrupts allowed.  True if taken here."""
        here = self.pc
        before = dict(self.regs)
        self.known[(here, before['rsp'])] = before
        fr0 = frame(self.G.kread64(before['rsp'], 5)) if here == self.L.start else None
        n0 = len(self.deliveries)
        self.gdb.monitor('nmi')
        for _ in range(4):
            self.step()
            if len(self.deliveries) > n0:
                return True
            if self.pc != here or self.regs != before:
                return False
            if fr0 is not None and frame(self.G.kread64(self.regs['rsp'], 5)) != fr0:
                return True
        raise Stuck('single step at %s makes no progress' % self.R.fmt(here))

    def slots(self):
        top = self.R.top
        v = self.G.kread64(top - SAVED_FRAME, 13)
        # top-160 .. top-64: saved(5) work(5) unmask repeats nested
        return {'saved': frame(v[0:5]), 'work': frame(v[5:10]), 'unmask': v[10],
                'repeats': v[11], 'nested': v[12],
                'flag': self.G.kread64(top - SLOT_FLAG)[0]}


# The outer contexts issue 6 asks for, and the variants that provide them.
REQUIRED = (
    ('outer NMI from kernel mode', ('kernel', 'kernel-gap')),
    ('outer NMI from user mode', ('user', 'user-hz')),
    ('nested NMI inside an int3 of the handler', ('kernel-int3', 'user-int3')),
    ('nested NMI inside a #PF of the handler', ('kernel-pf', 'user-pf')),
)


def variant_summary(vstats, results):
    """Per variant, in the order run: (name, covered, total, failures, path).

    total: the addresses the variant set out to inject at (in a sample, the
    sampled ones on its path), covered: those with a verdict, failures: the
    failed verdicts (trace, boot and console failures included), path: the
    distinct addresses of its path.  A boot that failed as a whole shows as
    a row of its own with total 0."""
    per = {}
    for rec in results:
        v = per.setdefault(rec['variant'], [set(), 0])
        if rec.get('addr') is not None:
            v[0].add(rec['addr'])
        v[1] += not rec['ok']
    rows = []
    for name in list(vstats) + [v for v in per if v not in vstats]:
        cov, nf = per.get(name, (set(), 0))
        st = vstats.get(name, {})
        rows.append((name, len(cov), st.get('todo', 0), nf, st.get('path', 0)))
    return rows


def required_summary(rows, expected):
    """Per REQUIRED context: (what, variants, covered, total, failures,
    complete).  expected: the variants the boots run should have produced;
    one that did not run leaves its context incomplete."""
    out = []
    by_name = {r[0]: r for r in rows}
    for what, bases in REQUIRED:
        names = [v for v in expected if base_variant(v) in bases]
        sel = [by_name[v] for v in names if v in by_name]
        cov = sum(r[1] for r in sel)
        tot = sum(r[2] for r in sel)
        nf = sum(r[3] for r in sel)
        complete = bool(names) and len(sel) == len(names) and nf == 0 and \
            all(r[2] and r[1] == r[2] for r in sel)
        out.append((what, names, cov, tot, nf, complete))
    return out
