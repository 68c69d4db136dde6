#!/usr/bin/env python3
"""Per-stage latencies of replicated writes from zk-server timeline marks.

Run an ensemble with RUST_LOG=warn,zk_timeline=debug (see zk-server/src/timeline.rs), put
load on it, then: bench/timeline.py n1.log n2.log n3.log
For every log index the leader proposed, it prints the median / p90 time (µs) from the
leader's propose to each stage on the leader and on each follower, and for writes
forwarded by followers the time from the forward send to the answer and to the reply.
"""
import re
import statistics
import sys
from collections import defaultdict

LINE = re.compile(r'zk_timeline: (.*)$')
ANSI = re.compile(r'\x1b\[[0-9;]*m')
FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


def parse(path):
    marks = []
    with open(path, errors='replace') as f:
        for line in f:
            m = LINE.search(ANSI.sub('', line))
            if not m:
                continue
            d = {k: v.strip('"') for k, v in FIELD.findall(m.group(1))}
            for k in list(d):
                if k != 'stage':
                    try:
                        d[k] = int(d[k])
                    except ValueError:
                        pass
            marks.append(d)
    return marks


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


def main(paths):
    nodes = {p: parse(p) for p in paths}
    leader = max(nodes, key=lambda p: sum(1 for m in nodes[p] if m['stage'] == 'propose'))
    lm = nodes[leader]
    propose = {m['index']: m for m in lm if m['stage'] == 'propose'}
    if not propose:
        sys.exit('no propose marks: was RUST_LOG=...,zk_timeline=debug set?')
    first = defaultdict(dict)  # (node, stage) -> index -> t

    def put(node, stage, index, t):
        d = first[(node, stage)]
        if index not in d:
            d[index] = t

    for p, marks in nodes.items():
        role = 'L' if p == leader else 'F' + str(sorted(nodes).index(p))
        for m in marks:
            s, i, t = m['stage'], m.get('index', 0), m['t_us']
            if s in ('append', 'flushed', 'apply', 'leader_done', 'fwd_reply', 'fwd_answer', 'fwd_done'):
                put(role, s, i, t)
                if s in ('fwd_answer', 'fwd_done'):
                    put(role, s + '_sent', i, m.get('sent_us', 0))
            elif s == 'ae_send':
                lo = i - m['n'] + 1
                for k in range(lo, i + 1):
                    put(role, 'ae_send_to%d' % m['to'], k, t)
                put(role, 'ae_commit_send_to%d' % m['to'], m['commit'], t)
            elif s == 'ae_recv':
                lo = i - m['n'] + 1
                for k in range(lo, i + 1):
                    put(role, 'ae_recv', k, t)
                put(role, 'ae_commit_recv', m['commit'], t)
    # commit-carrying marks: the first message whose commit >= index
    for key in list(first):
        if 'commit' in key[1]:
            d = first[key]
            best = {}
            nxt = None
            for c in sorted(d, reverse=True):
                nxt = d[c] if nxt is None else min(nxt, d[c])
                best[c] = nxt
            out = {}
            ks = sorted(best)
            j = 0
            for idx in sorted(propose):
                while j < len(ks) and ks[j] < idx:
                    j += 1
                if j < len(ks):
                    out[idx] = best[ks[j]]
            first[key] = out
    rows = []
    for (role, stage), d in sorted(first.items()):
        if stage.endswith('_sent'):
            continue
        deltas = [d[i] - propose[i]['t_us'] for i in propose if i in d]
        if deltas:
            rows.append((statistics.median(deltas), role, stage, len(deltas), pct(deltas, 0.9)))
    print('leader: %s, %d entries proposed, median batch %s writes' % (
        leader, len(propose), statistics.median(m.get('n', 1) for m in propose.values())))
    print('%-6s %-26s %8s %8s %6s' % ('node', 'stage (from propose)', 'p50 µs', 'p90 µs', 'count'))
    for med, role, stage, n, p90 in sorted(rows):
        print('%-6s %-26s %8d %8d %6d' % (role, stage, med, p90, n))
    for role in sorted({r for r, _ in first}):
        ans, done = first.get((role, 'fwd_answer')), first.get((role, 'fwd_done'))
        sent = first.get((role, 'fwd_done_sent'))
        if not done or not sent:
            continue
        idx = [i for i in done if i in sent and i in propose]
        tot = [done[i] - sent[i] for i in idx]
        to_prop = [propose[i]['t_us'] - sent[i] for i in idx]
        wait = [done[i] - ans[i] for i in idx if i in ans]
        print('%s forwarded: send->propose p50 %d, send->answer p50 %d, answer->applied p50 %d, '
              'send->done p50 %d p90 %d (n=%d)' % (
                  role, pct(to_prop, .5), pct([ans[i] - sent[i] for i in idx if i in ans], .5),
                  pct(wait, .5), pct(tot, .5), pct(tot, .9), len(tot)))
    cuts = [m for m in lm if m['stage'] == 'cut' and m.get('queued_us')]
    if cuts:
        pass


if __name__ == '__main__':
    main(sys.argv[1:])
