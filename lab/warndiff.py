# SPDX-License-Identifier: GPL-2.0
"""Compare the warnings of two build logs: what does the series add?

A warning is a compiler, sparse or objtool line, "file:line[:col]: warning:
message" or "file.o: warning: objtool: func+0x1f: message" (errors too).
Its key is the file (relative to the source tree) and the message, with the
line numbers and code offsets left out, so that a warning that only moved
is not new.  The new warnings are the series' keys beyond the base's count
of the same key.
"""

import collections
import re

# file:line[:col]: warning|error: message   (gcc, sparse)
SOURCE = re.compile(r'^(?P<file>[^\s:]+):\d+(?::\d+)?: (?P<sev>warning|error): (?P<msg>.*)$')
# file.o: warning: objtool: message
OBJTOOL = re.compile(r'^(?P<file>[^\s:]+\.o): (?P<sev>warning|error): (?P<msg>objtool: .*)$')


def relpath(path, srcdirs=()):
    """The path relative to the source tree: strip the first srcdir prefix
    that matches (a build in O=out prints them as ../src-x/...), then any
    leading ./ or ../."""
    for d in srcdirs:
        d = d.rstrip('/') + '/'
        if path.startswith(d):
            path = path[len(d):]
            break
    while path.startswith('./') or path.startswith('../'):
        path = path.split('/', 1)[1]
    return path


def normalize(line, srcdirs=()):
    """(file, 'warning: message') for a warning or error line, else None."""
    line = line.rstrip()
    m = OBJTOOL.match(line) or SOURCE.match(line)
    if not m:
        return None
    msg = m.group('msg')
    msg = re.sub(r'\+0x[0-9a-f]+\b', '', msg)               # objtool offsets
    msg = re.sub(r'(\S+?):\d+(?::\d+)?(?=[:\s)]|$)', r'\1', msg)    # file:line in text
    msg = re.sub(r'\s+', ' ', msg).strip()
    return relpath(m.group('file'), srcdirs), '%s: %s' % (m.group('sev'), msg)


def warnings(text, srcdirs=()):
    """Counter of the normalized warnings in a build log."""
    c = collections.Counter()
    for line in text.splitlines():
        k = normalize(line, srcdirs)
        if k:
            c[k] += 1
    return c


def new_warnings(base, series):
    """[(file, message)] the series has beyond the base (Counters), each as
    many times as it is new."""
    out = []
    for k in sorted(series):
        out += [k] * max(0, series[k] - base.get(k, 0))
    return out


def failed_targets(text):
    """Objects make could not build: "make[n]: *** [...: path/x.o] Error 1"."""
    return sorted(set(re.findall(r'\*\*\* \[[^\]]*?: ([^\]\s]+\.o)\] Error', text)))


def load_allow(path):
    """lab/warning-allow: a regex a line, a TAB, the reason it is kept."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip('\n')
                if line and not line.startswith('#') and '\t' in line:
                    rx, why = line.split('\t', 1)
                    out.append((re.compile(rx), why))
    except FileNotFoundError:
        pass
    return out


def justify(new, allow):
    """Split new warnings into (counted, [(warning, reason)]): a warning
    "file: message" matched by an allow regex is justified, not counted."""
    counted, justified = [], []
    for f, msg in new:
        why = next((w for rx, w in allow if rx.search('%s: %s' % (f, msg))), None)
        if why is None:
            counted.append((f, msg))
        else:
            justified.append(((f, msg), why))
    return counted, justified
