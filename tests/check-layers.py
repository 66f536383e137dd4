#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The layer rules a reviewer checks, checked by a script over the C sources.

Usage: tests/check-layers.py [--root DIR] [--check NAME]... [--list]

Every check reads the #include lines (and, for sysfs-write, the calls) of the
.c and .h files in src/, agent/ and cli/; tests/ and build outputs are not
product code and are not checked. Each violation is printed as
"FILE:LINE: [CHECK] what is wrong"; the exit status is 1 when any check
failed, 0 otherwise. With --check, only the named checks run (repeatable).

A quoted include ("x.h") is resolved as the compiler does here: the
including file's own directory first, then src/ (the core's include
directory, which agent/ and cli/ both get), then agent/ (agent_dep's).

Checks:
  src-deps      src/ includes nothing from agent/ or cli/ (the core is a
                library that the daemon and the client both link).
  cli-deps      cli/ includes nothing from agent/ (the client talks to the
                daemon over D-Bus only).
  agent-cycle   the include graph of agent/'s modules has no cycle. A module
                is a file name without .c/.h (daemon.c and daemon.h are the
                module "daemon"); module A depends on B when A.c or A.h
                includes B.h. A cycle means two modules cannot be understood,
                changed or tested apart. Each cycle is printed with the
                include lines that make it.
  sd-bus        <systemd/sd-bus.h> is included directly only by agent/bus-*.c
                and agent/bus-*.h (the only files that touch sd-bus) and by
                cli/ (hostdevctl is a D-Bus client through and through).
                Never by src/.
  sd-event      <systemd/sd-event.h> is included directly only by the agent
                files that own event sources on the loop:
                  agent/daemon.[ch]       the loop, signals, settle timers
                  agent/main.c            creates the loop
                  agent/monitor.[ch]      the udev/netlink monitor's I/O source
                  agent/intake.[ch]       the uevent queue and the settle timers
                  agent/event-priorities.h  the loop's schedule (the priority table)
                  agent/executor*.[ch]    the eventfd that brings the lanes'
                                          results to the loop, and the early-bind
                                          thread's (executor-early.c)
                  agent/reconciler.[ch]   plan timers and defer sources
                  agent/bus-*.[ch]        attaching the bus, the emitter's
                                          defer source
                Never by src/ or cli/.
  sysfs-write   only the executor writes /sys: "sysfs-write.h" is included
                only by agent/executor-*.c and agent/sysfs-write.c, and
                sysfs_write() / sysfs_write_attribute() are called only
                there. (Writes that bypass the helper, a raw open() of a
                sysfs path for writing, are not detected: review catches
                those; the helper is the only writer STYLE.md allows.)

The checks allow no exceptions: a rule that the tree breaks today fails
until the tree is fixed.
"""

import argparse
import fnmatch
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
CHECKS = ('src-deps', 'cli-deps', 'agent-cycle', 'sd-bus', 'sd-event', 'sysfs-write')
LAYERS = ('src', 'agent', 'cli')

SD_EVENT_ALLOWED = ('agent/daemon.[ch]', 'agent/main.c', 'agent/lease-manager.[ch]', 'agent/monitor.[ch]',
                    'agent/intake.[ch]', 'agent/event-priorities.h', 'agent/executor*.[ch]',
                    'agent/reconciler.[ch]', 'agent/bus-*.[ch]', 'agent/watch-worker.[ch]',
                    'agent/holder-watch.[ch]', 'agent/critical-watch.[ch]')
SD_BUS_ALLOWED = ('agent/bus-*.[ch]', 'cli/*.[ch]')
SYSFS_WRITERS = ('agent/executor-*.c', 'agent/sysfs-write.c')
SYSFS_WRITE_CALL = re.compile(r'\bsysfs_write(_attribute)?\s*\(')


def matches(rel, patterns):
    return any(fnmatch.fnmatchcase(rel, p) for p in patterns)


class Tree:
    def __init__(self, root):
        self.root = root
        self.files = []           # relative paths, sorted
        for layer in LAYERS:
            d = os.path.join(root, layer)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if name.endswith(('.c', '.h')):
                    self.files.append(layer + '/' + name)
        self.includes = {f: self._includes(f) for f in self.files}

    def _includes(self, rel):
        """[(line number, '<' or '"', name)] of |rel|, outside comments."""
        out = []
        in_comment = False
        with open(os.path.join(self.root, rel), encoding='utf-8', errors='replace') as f:
            for n, line in enumerate(f, 1):
                code = ''
                i = 0
                while i < len(line):
                    if in_comment:
                        j = line.find('*/', i)
                        if j < 0:
                            i = len(line)
                        else:
                            in_comment = False
                            i = j + 2
                    else:
                        j = line.find('/*', i)
                        k = line.find('//', i)
                        if k >= 0 and (j < 0 or k < j):
                            code += line[i:k]
                            break
                        if j < 0:
                            code += line[i:]
                            break
                        code += line[i:j]
                        in_comment = True
                        i = j + 2
                m = INCLUDE.match(code)
                if m:
                    out.append((n, m.group(1), m.group(2)))
        return out

    def resolve(self, rel, name):
        """The relative path a quoted include of |name| in |rel| reaches, or None (not ours)."""
        here = os.path.dirname(rel)
        for d in (here, 'src', 'agent'):
            cand = os.path.normpath(os.path.join(d, name))
            if os.path.isfile(os.path.join(self.root, cand)):
                return cand
        return None

    def code_lines(self, rel):
        """(line number, text) of |rel| with comments blanked (for call checks)."""
        with open(os.path.join(self.root, rel), encoding='utf-8', errors='replace') as f:
            text = f.read()
        text = re.sub(r'/\*.*?\*/', lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text, flags=re.S)
        text = re.sub(r'//[^\n]*', '', text)
        return list(enumerate(text.split('\n'), 1))


def layer_of(rel):
    return rel.split('/', 1)[0]


def check_deps(tree, layer, forbidden, check, out):
    for f in tree.files:
        if layer_of(f) != layer:
            continue
        for n, kind, name in tree.includes[f]:
            if kind != '"':
                continue
            target = tree.resolve(f, name)
            if target and layer_of(target) in forbidden:
                out.append('%s:%d: [%s] includes "%s" (%s): %s/ must not depend on %s/' %
                           (f, n, check, name, target, layer, layer_of(target)))


def module_of(rel):
    return os.path.splitext(os.path.basename(rel))[0]


def check_agent_cycle(tree, out):
    edges = {}      # module -> {module: [(file, line, include)]}
    for f in tree.files:
        if layer_of(f) != 'agent':
            continue
        a = module_of(f)
        edges.setdefault(a, {})
        for n, kind, name in tree.includes[f]:
            if kind != '"':
                continue
            target = tree.resolve(f, name)
            if not target or layer_of(target) != 'agent':
                continue
            b = module_of(target)
            if b != a:
                edges[a].setdefault(b, []).append((f, n, name))
                edges.setdefault(b, {})

    # Tarjan's strongly connected components; a component of more than one module holds a cycle.
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            strongconnect(v)

    for comp in sorted(sccs):
        if len(comp) < 2:
            continue
        members = set(comp)
        # One concrete cycle through the component's first module, for the message.
        start = comp[0]
        path = [start]
        seen = {start}

        def walk(v):
            for w in sorted(edges[v]):
                if w == start and len(path) > 1:
                    return True
                if w in members and w not in seen:
                    seen.add(w)
                    path.append(w)
                    if walk(w):
                        return True
                    path.pop()
            return False

        walk(start)
        cycle = path + [start]
        out.append('agent/: [agent-cycle] modules %s include each other; one cycle: %s' %
                   (', '.join(comp), ' -> '.join(cycle)))
        for a, b in zip(cycle, cycle[1:]):
            for f, n, name in edges[a][b]:
                out.append('%s:%d: [agent-cycle] includes "%s" (%s -> %s)' % (f, n, name, a, b))
        inside = ['%s -> %s' % (a, b) for a in comp for b in sorted(edges[a]) if b in members]
        out.append('agent/: [agent-cycle] every dependency inside: %s' % ', '.join(inside))


def check_system_header(tree, header, allowed, check, why, out):
    for f in tree.files:
        for n, kind, name in tree.includes[f]:
            if kind == '<' and name == header and not matches(f, allowed):
                out.append('%s:%d: [%s] includes <%s>: %s' % (f, n, check, header, why))


def check_sysfs_write(tree, out):
    for f in tree.files:
        if matches(f, SYSFS_WRITERS):
            continue
        for n, kind, name in tree.includes[f]:
            if kind == '"' and os.path.basename(name) == 'sysfs-write.h' and f != 'agent/sysfs-write.h':
                out.append('%s:%d: [sysfs-write] includes "%s": only the executor writes /sys '
                           '(agent/executor-*.c)' % (f, n, name))
        if not f.endswith('.c'):
            continue
        for n, text in tree.code_lines(f):
            if SYSFS_WRITE_CALL.search(text):
                out.append('%s:%d: [sysfs-write] calls %s: only the executor writes /sys (agent/executor-*.c)' %
                           (f, n, SYSFS_WRITE_CALL.search(text).group(0).rstrip('( ')))


def run(root, checks):
    tree = Tree(root)
    results = {}
    for check in checks:
        out = []
        if check == 'src-deps':
            check_deps(tree, 'src', ('agent', 'cli'), check, out)
        elif check == 'cli-deps':
            check_deps(tree, 'cli', ('agent',), check, out)
        elif check == 'agent-cycle':
            check_agent_cycle(tree, out)
        elif check == 'sd-bus':
            check_system_header(tree, 'systemd/sd-bus.h', SD_BUS_ALLOWED, check,
                                'only agent/bus-*.[ch] and cli/ touch sd-bus', out)
        elif check == 'sd-event':
            check_system_header(tree, 'systemd/sd-event.h', SD_EVENT_ALLOWED, check,
                                'only the agent files that own loop sources (see tests/check-layers.py)', out)
        elif check == 'sysfs-write':
            check_sysfs_write(tree, out)
        results[check] = out
    return tree, results


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    p.add_argument('--root', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    p.add_argument('--check', action='append', choices=CHECKS, help='run only this check (repeatable)')
    p.add_argument('--list', action='store_true', help='list the checks and exit')
    args = p.parse_args()
    if args.list:
        print('\n'.join(CHECKS))
        return 0
    checks = args.check or list(CHECKS)
    tree, results = run(os.path.normpath(args.root), checks)
    failed = [c for c in checks if results[c]]
    for c in checks:
        for line in results[c]:
            print(line)
    for c in checks:
        print('check-layers: %-12s %s' % (c, 'FAIL (%d)' % len(results[c]) if results[c] else 'ok'))
    print('check-layers: %d files, %d checks, %d failed' % (len(tree.files), len(checks), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
