#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make series-check: is the series ready to send?  One verdict a line, then
SERIES patches=<n> checkpatch=<n> prose=<n> bisect_fail=<n> build_fail=<n> new_warnings=<n>

  checkpatch:*  checkpatch.pl --strict on every patch; lines justified in
                lab/checkpatch-allow are printed with their reason, not counted
  prose:words   no commit message or added line names what only this
                repository knows (lab/series-prose: its paths, make targets,
                work tracking, the reference material's names)
  prose:length  no commit message body over MAX_BODY lines, unless
                lab/series-prose keeps it with a reason
  prose:cover   the cover letter's text above the shortlog (mail headers
                and Cc lines left out) at most MAX_COVER lines
  bisect:*      every commit of the series builds (lab/bisect.sh)
  w1:<config>   the objects the series touches, the NMI entry, KVM's NMI
                paths and every NMI handler's file, built with W=1 and sparse
                (C=2) under wide (x86_64, lab/config/wide.config), i386 and
                allnoconfig, for the base ("instrument": the pristine kernel
                plus new files only) and for the series (branch "series").
                Only objects the config builds (lab/kobjs.mk).  A warning in
                the series' log that the base's log lacks (file + message,
                no line numbers: lab/warndiff.py) is new; objtool's too.
  docs:*        kernel-doc -Wall on the new APIs; the Sphinx build of
                Documentation/arch/x86 (warnings about the files the series
                touches are new)

Logs: build/out-w1-<config>-<rev>/w1.log and build/out-docs/htmldocs.log.
A build log is kept by the hash of its inputs (source tree, config
fragments, objects, compiler and sparse versions) in build/w1-logs/, so an
unchanged base is never rebuilt.  --full adds x86_64 and i386 defconfig
builds of the whole kernel, with W=1 on the touched objects (slow).
"""

import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import traceback

import boots
import warndiff
from tally import Later, Tally, parse_summary, summary_line

TREE = os.path.join(boots.BUILD, 'linux')
REVS = {'base': 'instrument', 'series': 'series'}


def build_config(name):
    """(ARCH, fragment files on tinyconfig or a make target) of a row of
    lab/config/variants."""
    row = boots.variant_row(name)
    how = row['config']
    return row['arch'], how if isinstance(how, str) else [f + '.config' for f in how]


# The W=1/sparse configurations: name -> (ARCH, config).
CONFIGS = {'wide': build_config('w1-wide'), 'i386': build_config('w1-i386'),
           'allno': build_config('w1-allno')}
FULL_CONFIGS = {'defconfig-x86_64': build_config('full-defconfig-x86_64'),
                'defconfig-i386': build_config('full-defconfig-i386')}
# Objects the series does not touch but whose NMI code it changes the
# ground under: the NMI entry, KVM's NMI exits, Xen PV and SEV NMI paths.
EXTRA = ['arch/x86/entry/*.[cS]', 'arch/x86/kernel/nmi*.c', 'arch/x86/kvm/vmx/vmx.c',
         'arch/x86/kvm/vmx/vmenter.S', 'arch/x86/kvm/svm/svm.c', 'arch/x86/kvm/svm/vmenter.S',
         'arch/x86/xen/xen-asm.S', 'arch/x86/xen/enlighten_pv.c', 'arch/x86/coco/sev/core.c']
# The NMI handler API: every file that registers a handler.
NMI_API = ['register_nmi_handler', 'NMI_LOCAL', 'NMI_UNKNOWN', 'NMI_INTERNAL', 'NMI_EXTERNAL']
# The top Makefile unexports LC_ALL: plain ASCII messages come with these.
MK_ENV = {'LANG': 'C', 'LC_CTYPE': 'C', 'LC_MESSAGES': 'C',
          'CCACHE_BASEDIR': boots.BUILD, 'CCACHE_NOHASHDIR': '1',
          'CCACHE_SLOPPINESS': 'time_macros', 'KBUILD_BUILD_TIMESTAMP': 'Thu Jan  1 2025',
          'KBUILD_BUILD_USER': 'lab', 'KBUILD_BUILD_HOST': 'lab'}


# The files with the series' new APIs.
KERNEL_DOC_FILES = ['arch/x86/kernel/nmi.c', 'arch/x86/include/asm/nmi.h',
                    'arch/x86/include/asm/nmi_stack.h', 'arch/x86/kernel/nmi_torture.c']


def kernel_doc(tree, files):
    """scripts/kernel-doc -none -Wall: its complaints, one a line."""
    r = subprocess.run(['perl', 'scripts/kernel-doc', '-none', '-Wall'] + files,
                       cwd=tree, capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip().splitlines()
    return out or ([] if r.returncode == 0 else ['kernel-doc exit %d' % r.returncode])


def patch_list():
    with open(os.path.join(boots.TOP, 'patches', 'series')) as f:
        return [p.strip() for p in f if p.strip() and not p.startswith('#')]


def part_checkpatch(t):
    """One row per patch; returns the number of issues not justified."""
    tree = os.path.join(boots.BUILD, 'linux')
    allowed = load_checkpatch_allow()
    count = 0
    for p in patch_list():
        path = os.path.join(boots.TOP, 'patches', p)
        # checkpatch runs scripts/spdxcheck.py with 'env python3', which
        # needs Debian's python3-ply and python3-git: put /usr/bin first so
        # that another python3 on PATH cannot make it skip the SPDX check,
        # and count anything it says on stderr (a traceback) as an issue.
        env = dict(os.environ, PATH='/usr/bin:' + os.environ.get('PATH', ''))
        r = subprocess.run(['perl', 'scripts/checkpatch.pl', '--strict', '--terse',
                            '--showfile', '--no-summary', path],
                           cwd=tree, capture_output=True, text=True, env=env)
        issues = [ln for ln in r.stdout.splitlines() if ln.strip()]
        issues += ['stderr: ' + ln for ln in r.stderr.splitlines() if ln.strip()]
        left = [ln for ln in issues if not any(re.search(a, ln) for a in allowed)]
        count += len(left)
        if left:
            t.add('FAIL', 'checkpatch:' + p, '%d issues: %s' % (len(left), left[0]))
        else:
            t.add('PASS', 'checkpatch:' + p)
        for ln in issues:
            if ln not in left:
                reason = next(r for a, r in allowed.items() if re.search(a, ln))
                print('      justified: %s  [%s]' % (ln, reason))
    return count


def load_checkpatch_allow():
    """lab/checkpatch-allow: regex<TAB>reason; a justified checkpatch line.
    Returns {regex: reason}."""
    out = {}
    try:
        with open(os.path.join(boots.LAB, 'checkpatch-allow')) as f:
            for line in f:
                if line.strip() and not line.startswith('#'):
                    rx, _, reason = line.rstrip('\n').partition('\t')
                    out[rx.strip()] = reason.strip()
    except FileNotFoundError:
        pass
    return out


def git(*args, tree=TREE):
    return subprocess.run(['git', '-C', tree] + list(args), check=True,
                          capture_output=True, text=True).stdout


def bisect_in_place():
    """lab/bisect.sh builds in build/linux itself (checking out each commit)
    when it is the clean series branch; else in build/src-bisect."""
    head = subprocess.run(['git', '-C', TREE, 'symbolic-ref', '-q', 'HEAD'],
                          capture_output=True, text=True).stdout.strip()
    return head == 'refs/heads/series' and not git('status', '--porcelain',
                                                   '--untracked-files=no').strip()


def worktree(rev, name):
    """build/src-NAME at rev (created or moved there)."""
    src = os.path.join(boots.BUILD, 'src-' + name)
    commit = git('rev-parse', rev + '^{commit}').strip()
    git('worktree', 'prune')
    if not os.path.isdir(src):
        git('worktree', 'add', '-q', '--detach', src, commit)
    elif git('rev-parse', 'HEAD', tree=src).strip() != commit:
        git('checkout', '-q', '--detach', commit, tree=src)
        git('reset', '-q', '--hard', commit, tree=src)
    return src


def make(src, out, arch, *goals, extra=(), check_rc=True):
    cmd = ['nice', 'make', '-s', '-C', src, 'O=' + out, 'ARCH=' + arch, 'CC=ccache gcc',
           'HOSTCC=ccache gcc', '-j%d' % os.cpu_count()] + list(extra) + list(goals)
    r = subprocess.run(cmd, env=dict(os.environ, **MK_ENV), capture_output=True, text=True)
    if check_rc and r.returncode:
        raise RuntimeError('%s: %s' % (' '.join(goals), (r.stdout + r.stderr)[-2000:]))
    return r


def configure(src, out, arch, how):
    """The config, remade only when its inputs changed."""
    frags = [] if isinstance(how, str) else [os.path.join(boots.LAB, 'config', f) for f in how]
    frags = [f for f in frags if os.path.exists(f)]
    key = sha([arch, str(how), git('rev-parse', 'HEAD^{tree}', tree=src)] +
              [open(f).read() for f in frags])
    stamp = os.path.join(out, '.w1-config')
    if os.path.exists(os.path.join(out, '.config')) and read(stamp) == key:
        return
    os.makedirs(out, exist_ok=True)
    if frags:
        r = subprocess.run([os.path.join(boots.LAB, 'kconfig.sh'), src, out, arch] + frags,
                           capture_output=True, text=True, env=dict(os.environ, **MK_ENV))
        if r.returncode:
            raise RuntimeError('kconfig.sh: %s' % (r.stdout + r.stderr)[-2000:])
    else:
        make(src, out, arch, how)
    make(src, out, arch, 'syncconfig')      # include/config/auto.conf, for Kbuild
    with open(stamp, 'w') as f:
        f.write(key)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def sha(parts):
    return hashlib.sha256('\0'.join(parts).encode()).hexdigest()[:16]


def candidates(src):
    """Source files (relative) of every object to check, from the series."""
    files = [f for f in git('diff', '--name-only', 'base..series').split()
             if f.endswith(('.c', '.S')) and not f.startswith('tools/')]
    for rev in ('base', 'series'):
        words = [a for w in NMI_API for a in ('-e', w)]
        files += git('grep', '-l', '-w', *words, rev, '--', 'arch/x86/*.c', 'drivers/*.c',
                     'kernel/*.c').replace(rev + ':', '').split()
    for pat in EXTRA:
        files += [os.path.relpath(p, src) for p in glob.glob(os.path.join(src, pat))]
    return sorted(set(files))


class Kbuild:
    """Which objects a configured out dir builds: each directory's Kbuild
    file evaluated with lab/kobjs.mk, and its parents' up to a top dir."""

    def __init__(self, src, out):
        self.src, self.out = src, out
        self.dirs = {}

    def lists(self, d):
        if d not in self.dirs:
            objs, subs = set(), set()
            if any(os.path.exists(os.path.join(self.src, d, f)) for f in ('Kbuild', 'Makefile')):
                r = subprocess.run(['make', '-s', '-f', os.path.join(boots.LAB, 'kobjs.mk'),
                                    'OUT=' + self.out, 'SRC=' + self.src, 'DIR=' + d,
                                    'kobjs-print'], capture_output=True, text=True)
                if r.returncode:
                    raise RuntimeError('kobjs.mk %s: %s' % (d, r.stderr.strip()))
                lines = r.stdout.splitlines() + ['', '']
                objs, subs = set(lines[0].split()), set(lines[1].split())
            self.dirs[d] = (objs, subs)
        return self.dirs[d]

    def dir_enabled(self, d):
        """A top dir (drivers, arch/x86, ...), or listed by an ancestor
        (drivers/Makefile lists char/ipmi/) that is enabled."""
        a = os.path.dirname(d)
        if a in ('', 'arch'):
            return True
        while a not in ('', 'arch'):
            if os.path.relpath(d, a) in self.lists(a)[1]:
                return self.dir_enabled(a)
            a = os.path.dirname(a)
        return False

    def builds(self, obj):
        d = os.path.dirname(obj)
        while d and d != 'arch':
            if os.path.relpath(obj, d) in self.lists(d)[0]:
                return self.dir_enabled(d)
            d = os.path.dirname(d)
        return False


def versions():
    out = []
    for cmd in (['gcc', '--version'], ['sparse', '--version']):
        r = subprocess.run(cmd, capture_output=True, text=True)
        out.append((r.stdout + r.stderr).splitlines()[0] if r.stdout + r.stderr else '')
    return out


def w1_build(cfg, rev, src, files, arch, how, extra=('W=1', 'C=2')):
    """Build the config's objects of files in src; (log text, objects)."""
    out = os.path.join(boots.BUILD, 'out-w1-%s-%s' % (cfg, rev))
    configure(src, out, arch, how)
    kb = Kbuild(src, out)
    objs = [f[:-2] + '.o' for f in files if os.path.exists(os.path.join(src, f))]
    objs = [o for o in objs if kb.builds(o)]
    cache = os.path.join(boots.BUILD, 'w1-logs')
    os.makedirs(cache, exist_ok=True)
    key = sha([git('rev-parse', 'HEAD^{tree}', tree=src), read(os.path.join(out, '.config')),
               ' '.join(extra), repr(sorted(MK_ENV.items()))] + objs + versions())
    cached = os.path.join(cache, '%s-%s-%s.log' % (cfg, rev, key))
    text = read(cached)
    if text is None:
        make(src, out, arch, 'prepare', extra=[e for e in extra if not e.startswith('C=')])
        for o in objs:      # compile again: the warnings come with the compile
            for p in (o, o.replace('.o', '.s')):
                if os.path.exists(os.path.join(out, p)):
                    os.unlink(os.path.join(out, p))
        r = make(src, out, arch, *objs, extra=['-k'] + list(extra), check_rc=False)
        text = r.stdout + r.stderr
        with open(cached + '.tmp', 'w') as f:
            f.write(text)
        os.rename(cached + '.tmp', cached)
    with open(os.path.join(out, 'w1.log'), 'w') as f:
        f.write(text)
    return text, objs


def srcdirs(src):
    return [src, os.path.relpath(src, os.path.join(boots.BUILD, 'out-x'))]


def part_w1(t, cfg, arch, how, srcs, files, extra=('W=1', 'C=2')):
    """One config, base and series: (build failures, new warnings)."""
    start = time.monotonic()
    logs, objs = {}, {}
    try:
        for rev in ('base', 'series'):
            logs[rev], objs[rev] = w1_build(cfg, rev, srcs[rev], files, arch, how, extra)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        t.add('FAIL', 'w1:%s' % cfg, 'cannot configure or prepare: %s' %
              str(e).strip().splitlines()[-1][:200])
        return 1, 0
    base_failed = warndiff.failed_targets(logs['base'])
    if base_failed:
        t.add('FAIL', 'w1:%s:base' % cfg, 'the base does not build: %s' % ' '.join(base_failed))
    failed = [o for o in warndiff.failed_targets(logs['series']) if o not in base_failed]
    base = warndiff.warnings(logs['base'], srcdirs(srcs['base']))
    new = warndiff.new_warnings(base, warndiff.warnings(logs['series'], srcdirs(srcs['series'])))
    errors = [n for n in new if n[1].startswith('error:')]
    new = [n for n in new if not n[1].startswith('error:')]
    new, justified = warndiff.justify(new, warndiff.load_allow(
        os.path.join(boots.LAB, 'warning-allow')))
    for (f, msg), why in justified:
        t.say('      justified: %s: %s (%s)' % (f, msg, why))
    for f, msg in errors + new:
        t.say('      %s: %s' % (f, msg))
    note = '%d objects, %d new warnings, %.0f s' % (len(objs['series']), len(new),
                                                    time.monotonic() - start)
    if failed:
        note = 'build failed: %s; %s' % (' '.join(failed), note)
    if errors:
        note = '%d new errors; %s' % (len(errors), note)
    t.add('PASS' if not failed and not new and not errors else 'FAIL', 'w1:%s' % cfg, note)
    return len(failed), len(new) + len(errors)


def part_docs(t, src, touched):
    """kernel-doc on the new APIs, the Sphinx build of Documentation/arch/x86."""
    out = kernel_doc(src, KERNEL_DOC_FILES)
    t.add('PASS' if not out else 'FAIL', 'docs:kernel-doc', out[0] if out else '')
    new = len(out)
    dout = os.path.join(boots.BUILD, 'out-docs')
    os.makedirs(dout, exist_ok=True)
    r = make(src, dout, 'x86_64', 'htmldocs', extra=['SPHINXDIRS=arch/x86'], check_rc=False)
    log = r.stdout + r.stderr
    with open(os.path.join(dout, 'htmldocs.log'), 'w') as f:
        f.write(log)
    warns = [ln for ln in log.splitlines() if re.search(r'WARNING|ERROR|CRITICAL', ln)]
    mine = [ln for ln in warns if any(f in ln for f in touched)]
    for ln in mine:
        t.say('      ' + ln.replace(src + '/', ''))
    html = os.path.join(dout, 'Documentation/output/arch/x86/nmi-nesting.html')
    ok = r.returncode == 0 and not mine and os.path.exists(html)
    t.add('PASS' if ok else 'FAIL', 'docs:sphinx',
          '%d warnings about the series\' files (%d in all)%s' % (
              len(mine), len(warns), '' if r.returncode == 0 else '; make htmldocs failed')
          if not ok else '')
    return new + len(mine) + (0 if r.returncode == 0 else 1)


def bisect(t):
    """lab/bisect.sh: one row per patch; the number that failed."""
    p = subprocess.Popen(['nice', os.path.join(boots.LAB, 'bisect.sh')], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    fails, last = 0, ''
    for line in p.stdout:       # a row as each commit is built
        m = re.match(r'(PASS|FAIL)\s+(bisect:\S+)\s*(.*)', line)
        if m:
            t.add(m.group(1), m.group(2), m.group(3))
            fails += m.group(1) == 'FAIL'
        last = line.strip() or last
    p.wait()
    if not parse_summary(last, 'BISECT'):
        t.add('FAIL', 'bisect', last or 'no BISECT line')
        fails += 1
    return fails


MAX_BODY = 60


def load_prose(path=os.path.join(boots.LAB, 'series-prose')):
    """lab/series-prose: ([(regex, why)] forbidden words, [(regex, why)] long
    messages that were kept)."""
    words, longs = [], []
    with open(path) as f:
        for ln in f:
            if ln.startswith('#') or not ln.strip():
                continue
            kind, rx, why = ln.rstrip('\n').split('\t')
            (words if kind == 'word' else longs).append((re.compile(rx, re.I if kind == 'word'
                                                                    else 0), why))
    return words, longs


def split_patch(text):
    """A format-patch file -> (subject, body lines, added lines).  The body
    runs from after the headers to the first "---" line, trailers left out;
    added lines are the diff's "+" lines."""
    lines = text.split('\n')
    i, subject = 0, ''
    while i < len(lines) and lines[i]:
        if lines[i].startswith('Subject:'):
            subject = re.sub(r'^Subject: (\[[^]]*\] )?', '', lines[i])
            while i + 1 < len(lines) and lines[i + 1].startswith(' '):
                i += 1
                subject += lines[i]
        i += 1
    body = []
    for ln in lines[i + 1:]:
        if ln == '---':
            break
        body.append(ln)
    while body and not body[-1].strip():
        body.pop()
    body = [ln for ln in body if not re.match(r'^[A-Z][A-Za-z-]+: .*<.*@.*>$', ln)]
    while body and not body[-1].strip():
        body.pop()
    added = [ln[1:] for ln in lines if ln.startswith('+') and not ln.startswith('+++')]
    return subject, body, added


def part_prose(t, patches=None):
    """Two rows: no patch names what only this repository knows, and no
    commit message is longer than MAX_BODY lines unless a person kept it.
    Returns the number of findings."""
    words, longs = load_prose()
    paths = patches if patches is not None else [
        os.path.join(boots.TOP, 'patches', p) for p in patch_list()]
    found, long_bad, kept = [], [], []
    for path in paths:
        subject, body, added = split_patch(read(path))
        name = os.path.basename(path)[:4]
        for where, text in (('message', body), ('diff', added)):
            for ln in text:
                for rx, why in words:
                    m = rx.search(ln)
                    if m:
                        found.append('%s %s: "%s" (%s)' % (name, where, m.group(0), why))
        if len(body) > MAX_BODY:
            if any(rx.search(subject) for rx, _ in longs):
                kept.append('%s (%d lines)' % (name, len(body)))
            else:
                long_bad.append('%s: %d lines' % (name, len(body)))
    t.add('PASS' if not found else 'FAIL', 'prose:words',
          '; '.join(found[:3]) if found else '%d patches' % len(paths))
    t.add('PASS' if not long_bad else 'FAIL', 'prose:length',
          ('over %d lines: ' % MAX_BODY + ', '.join(long_bad)) if long_bad else
          'at most %d lines%s' % (MAX_BODY, ('; kept: ' + ', '.join(kept)) if kept else ''))
    return len(found) + len(long_bad)


MAX_COVER = 80


def cover_body(text):
    """A cover letter -> its text lines between the mail headers and the
    shortlog (b4's "---" or the first "Name (n):" line), trailing blank lines
    left out."""
    lines = text.split('\n')
    i = 0
    while i < len(lines) and lines[i]:
        i += 1
    body = []
    for ln in lines[i + 1:]:
        # The shortlog ("Name (n):"), or b4's "---" before it.
        if re.match(r'^\S.* \(\d+\):$', ln) or ln == '---':
            break
        body.append(ln)
    while body and not body[-1].strip():
        body.pop()
    return body


def part_cover(t, path=None, src=None):
    """One row: the cover letter a reviewer reads first is short.  Returns
    the number of findings (0 or 1)."""
    path = path or os.path.join(boots.TOP, 'patches', '0000-cover-letter.patch')
    if not os.path.exists(path):
        t.add('FAIL', 'prose:cover', 'no %s' % os.path.basename(path))
        return 1
    n = len(cover_body(read(path)))
    # lab/cover.sh hands the text to b4, which drops lines starting with '#'.
    src = src or os.path.join(boots.LAB, 'cover-letter.txt')
    lost = [i + 1 for i, ln in enumerate(read(src).splitlines()) if ln.startswith('#')] \
        if os.path.exists(src) else []
    ok = n <= MAX_COVER and not lost
    t.add('PASS' if ok else 'FAIL', 'prose:cover',
          '%d lines above the shortlog (at most %d)%s' % (
              n, MAX_COVER, '; lab/cover-letter.txt lines %s start with #, which b4 drops'
              % ','.join(map(str, lost)) if lost else ''))
    return int(not ok)


def wide_matrix(t, srcs, full=False):
    """W=1 and sparse under every config, base against series, and the
    docs: (build failures, new warnings)."""
    files = candidates(srcs['series'])
    touched = git('diff', '--name-only', 'base..series').split()
    build_fail = new = 0
    for cfg, (arch, how) in CONFIGS.items():
        f, n = part_w1(t, cfg, arch, how, srcs, files)
        build_fail += f
        new += n
    if full:
        for cfg, (arch, how) in FULL_CONFIGS.items():
            f, n = part_full(t, cfg, arch, how, srcs, files)
            build_fail += f
            new += n
    new += part_docs(t, srcs['series'], touched)
    return build_fail, new


def run(t, full=False):
    """The whole series check into the tally; returns the SERIES line."""
    patches = patch_list()
    commits = len(git('rev-list', 'base..series').split())
    if commits != len(patches):
        t.add('FAIL', 'series:export', "build/linux's series branch has %d commits, patches/ "
              "%d: 'make export' first" % (commits, len(patches)))
    issues = part_checkpatch(t)
    prose = part_prose(t) + part_cover(t)
    srcs = {rev: worktree(ref, 'w1-' + rev) for rev, ref in REVS.items()}
    # The W=1/sparse matrix and the docs build in worktrees of their own,
    # beside the bisect (which checks out build/linux itself): most of an
    # incremental kernel build is one-core work (make's walk, the links,
    # objtool on vmlinux.o), so the matrix takes the other core.  Its rows
    # come after the bisect's, in the order they were made.
    side, counts = Later(), {}

    def matrix():
        try:
            counts['v'] = wide_matrix(side, srcs, full)
        except Exception:       # a row, not a thread that dies unheard
            side.say(traceback.format_exc())
            side.add('FAIL', 'w1', 'the W=1/sparse matrix crashed: %s' %
                     traceback.format_exc().strip().splitlines()[-1])
            counts['v'] = (1, 0)

    th = threading.Thread(target=matrix)
    th.start()
    bisect_fail = bisect(t)
    th.join()
    side.replay(t)
    build_fail, new = counts['v']
    return summary_line('SERIES', [('patches', len(patches)), ('checkpatch', issues),
                                   ('prose', prose), ('bisect_fail', bisect_fail),
                                   ('build_fail', build_fail), ('new_warnings', new)])


def part_full(t, cfg, arch, how, srcs, files):
    """A defconfig: the whole kernel (bzImage, modules) for base and series,
    so that objtool also checks vmlinux.o; then the touched objects again
    with W=1.  (build failures, new warnings)."""
    logs = {}
    for rev in ('base', 'series'):
        start = time.monotonic()
        out = os.path.join(boots.BUILD, 'out-w1-%s-%s' % (cfg, rev))
        configure(srcs[rev], out, arch, how)
        r = make(srcs[rev], out, arch, 'bzImage', 'modules', check_rc=False)
        logs[rev] = r.stdout + r.stderr
        with open(os.path.join(out, 'full.log'), 'w') as f:
            f.write(logs[rev])
        t.add('PASS' if r.returncode == 0 else 'FAIL', 'full:%s:%s' % (cfg, rev),
              '%.0f s' % (time.monotonic() - start) if r.returncode == 0 else
              (warndiff.failed_targets(logs[rev]) + logs[rev].strip().splitlines()[-1:])[0])
    fails = int('Error' in logs['series'] and 'Error' not in logs['base'])
    new = warndiff.new_warnings(warndiff.warnings(logs['base'], srcdirs(srcs['base'])),
                                warndiff.warnings(logs['series'], srcdirs(srcs['series'])))
    for f, msg in new:
        t.say('      %s: %s' % (f, msg))
    t.add('PASS' if not new else 'FAIL', 'full:%s:warnings' % cfg,
          '%d new warnings (objtool on vmlinux.o included)' % len(new) if new else '')
    f, n = part_w1(t, cfg, arch, how, srcs, files, extra=('W=1',))
    return fails + f, len(new) + n


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--full', action='store_true',
                   help='also x86_64 and i386 defconfig, whole kernel (slow)')
    args = p.parse_args(argv)
    t = Tally()
    start = time.monotonic()
    line = run(t, args.full)
    print()
    for v, name, note in t.rows:
        if v != 'PASS':
            print('  %-5s %s  %s' % (v, name, note))
    print('series-check: %d checks in %.0f s' % (len(t.rows), time.monotonic() - start))
    print(line)
    return 0 if t.failed() == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
