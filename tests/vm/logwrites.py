#!/usr/bin/env python3
"""Replays a dm-log-writes log as a disk with a volatile write cache may have kept it.

The kernel's dm-log-writes target (Documentation/admin-guide/device-mapper/
log-writes.rst) records every write that reached a device, in the order the
writes became stable as far as the block layer can tell: a write that is not
FUA is logged only when a later FLUSH completes, just before that flush's own
entry. So the log is a sequence of *epochs*, each ending with a flush entry:
everything logged before a flush was on stable storage once it completed,
and the writes of the epoch after it were in the volatile cache, any subset
of them may be lost by a power cut before the next flush.

Log format (all little endian): block 0 is the super (u64 magic
0x6a736677736872, u64 version 1, u64 nr_entries, u32 sectorsize); entries
follow from block 1. An entry is one block: u64 sector, u64 nr_sectors,
u64 flags, u64 data_len (sector and nr_sectors in units of sectorsize); a
MARK entry carries its text (data_len bytes) after those 32 bytes; any other
entry that is not a DISCARD is followed by its nr_sectors blocks of data.
Flags: 1 FLUSH, 2 FUA, 4 DISCARD, 8 MARK, 16 METADATA.

  logwrites.py info LOG
  logwrites.py replay BASE LOG OUT --epoch K --keep all|none|header|data|random:SEED
  logwrites.py sweep BASE LOG --check CMD [--header-bytes N] [--sample N]
                     [--seed S] [--random-subsets N] [--report FILE]

`sweep` makes, for every epoch boundary K (0 = before the first flush) and
every subset kind, the image a power cut could leave: BASE (the device before
recording) + every write of the epochs before K + the chosen subset of the
volatile writes of epoch K (header = those touching the first
--header-bytes, data = the others, random = each kept with probability 1/2).
It runs `CMD IMAGE` on each; CMD exits 0 (intact), 3 (unrecoverable by
design, reported as such) or anything else (lost). States whose image equals
one already checked are not checked again. --sample N checks only N states
drawn at random (always including the header-only and data-only states of
every epoch that mixes header-area writes with others). Prints one line per state and
"LOGWRITES states=N checked=C intact=I by_design=D lost=L" at the end; exits
1 if any state was lost.
"""

import argparse
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

MAGIC = 0x6A736677736872
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8


class Entry:
    __slots__ = ("index", "sector", "nr_sectors", "flags", "mark", "data_at")

    def __init__(self, index, sector, nr_sectors, flags, mark, data_at):
        self.index = index
        self.sector = sector
        self.nr_sectors = nr_sectors
        self.flags = flags
        self.mark = mark
        self.data_at = data_at

    def writes(self):
        return self.nr_sectors > 0 and not self.flags & MARK


def parse(log_path):
    """Returns (sectorsize, [Entry]) of the log; raises ValueError if bad."""
    with open(log_path, "rb") as f:
        sb = f.read(28)
        if len(sb) < 28:
            raise ValueError(f"{log_path}: too short for a log-writes super")
        magic, version, nr, ss = struct.unpack("<QQQI", sb)
        if magic != MAGIC or version != 1:
            raise ValueError(f"{log_path}: not a dm-log-writes log (magic {magic:#x})")
        if ss not in (512, 1024, 2048, 4096):
            raise ValueError(f"{log_path}: bad sector size {ss}")
        size = os.fstat(f.fileno()).st_size
        entries = []
        at = ss
        for i in range(nr):
            f.seek(at)
            raw = f.read(ss)
            if len(raw) < 32:
                raise ValueError(f"{log_path}: entry {i} cut short")
            sector, nsec, flags, dlen = struct.unpack("<QQQQ", raw[:32])
            mark = None
            if flags & MARK:
                if dlen > ss - 32:
                    raise ValueError(f"{log_path}: entry {i}: mark too long")
                mark = raw[32 : 32 + dlen].decode("utf-8", "replace")
                nsec = 0
            at += ss
            data_at = at
            if not flags & (DISCARD | MARK):
                at += nsec * ss
            if at > size:
                raise ValueError(f"{log_path}: entry {i} runs past the end")
            entries.append(Entry(i, sector, nsec, flags, mark, data_at))
        return ss, entries


def epochs(entries):
    """Splits the log at flushes: [(durable_after, [volatile entries])].

    Epoch k holds the writes that were volatile between flush k and flush
    k+1: the writes logged before flush k+1 and, if flush k carried data
    without FUA, that data. FUA writes are stable once logged but may still
    be lost if the cut comes before they completed, so they count as
    volatile of their epoch too (a superset of the real states).
    """
    out = []
    cur = []
    for e in entries:
        if e.flags & FLUSH:
            out.append(cur)
            cur = [e] if e.writes() else []
        elif e.writes():
            cur.append(e)
    out.append(cur)
    return out


class Device:
    def __init__(self, path, log_path, ss):
        self.fd = os.open(path, os.O_RDWR)
        self.log = open(log_path, "rb")
        self.ss = ss

    def apply(self, e):
        off = e.sector * self.ss
        n = e.nr_sectors * self.ss
        if e.flags & DISCARD:
            data = bytes(n)  # the worst a discard may read back as
        else:
            self.log.seek(e.data_at)
            data = self.log.read(n)
        os.pwrite(self.fd, data, off)

    def close(self):
        os.close(self.fd)
        self.log.close()


def touches(e, ss, header_bytes):
    return e.sector * ss < header_bytes


def subset(volatile, kind, ss, header_bytes):
    if kind == "all":
        return list(volatile)
    if kind == "none":
        return []
    if kind == "header":
        return [e for e in volatile if touches(e, ss, header_bytes)]
    if kind == "data":
        return [e for e in volatile if not touches(e, ss, header_bytes)]
    if kind.startswith("random:"):
        rnd = random.Random(kind)
        return [e for e in volatile if rnd.random() < 0.5]
    raise ValueError(f"unknown subset {kind}")


def replay(base, log_path, out, epoch, kind, header_bytes):
    ss, entries = parse(log_path)
    eps = epochs(entries)
    if not 0 <= epoch < len(eps):
        raise ValueError(f"epoch {epoch} out of range 0..{len(eps) - 1}")
    shutil.copyfile(base, out)
    dev = Device(out, log_path, ss)
    for ep in eps[:epoch]:
        for e in ep:
            dev.apply(e)
    for e in subset(eps[epoch], kind, ss, header_bytes):
        dev.apply(e)
    dev.close()


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sweep(args):
    ss, entries = parse(args.log)
    eps = epochs(entries)
    marks = [(e.index, e.mark) for e in entries if e.flags & MARK]
    kinds = ["all", "none", "header", "data"] + [
        f"random:{args.seed}:{i}" for i in range(args.random_subsets)
    ]
    states = []
    for k, vol in enumerate(eps):
        for kind in kinds:
            if kind != "all" and not vol:
                continue  # nothing volatile: every kind is "all"
            states.append((k, kind))
    want = set(states)
    if args.sample and args.sample < len(states):
        rnd = random.Random(args.seed)
        # Always: the header-only and data-only states of every epoch that
        # mixes writes in the header area with writes elsewhere (where an
        # ordering bug between header and data shows).
        def mixed(vol):
            hdr = [touches(e, ss, args.header_bytes) for e in vol]
            return any(hdr) and not all(hdr)

        must = {
            (k, kind)
            for (k, kind) in states
            if kind in ("header", "data") and mixed(eps[k])
        }
        rest = [s for s in states if s not in must]
        rnd.shuffle(rest)
        want = must | set(rest[: max(0, args.sample - len(must))])
    print(
        f"logwrites: {len(entries)} entries, {len(eps)} epochs, "
        f"{len(states)} states, checking {len(want)}; marks {marks}",
        flush=True,
    )
    work = tempfile.mkdtemp(prefix="logwrites.", dir=args.tmp)
    durable = os.path.join(work, "durable.img")
    shutil.copyfile(args.base, durable)
    dev = Device(durable, args.log, ss)
    seen = {}
    counts = {"checked": 0, "intact": 0, "by_design": 0, "lost": 0}
    report = open(args.report, "w") if args.report else None
    try:
        for k, vol in enumerate(eps):
            for kind in kinds:
                if (k, kind) not in want:
                    continue
                img = os.path.join(work, "state.img")
                shutil.copyfile(durable, img)
                chosen = subset(vol, kind, ss, args.header_bytes)
                d2 = Device(img, args.log, ss)
                for e in chosen:
                    d2.apply(e)
                d2.close()
                digest = file_digest(img)
                hdr = sum(1 for e in chosen if touches(e, ss, args.header_bytes))
                desc = (
                    f"epoch {k}/{len(eps) - 1} keep {kind}: "
                    f"{len(chosen)}/{len(vol)} volatile writes ({hdr} in the header area)"
                )
                if digest in seen:
                    line = f"{desc}: same image as {seen[digest][0]} -> {seen[digest][1]}"
                else:
                    counts["checked"] += 1
                    r = subprocess.run(
                        args.check + [img],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        errors="replace",
                    )
                    why = (r.stdout.strip().splitlines() or [""])[-1][:200]
                    verdict = {0: "intact", 3: "by_design"}.get(r.returncode, "lost")
                    counts[verdict] += 1
                    seen[digest] = (f"epoch {k} keep {kind}", verdict)
                    line = f"{desc}: {verdict} ({why})"
                    if verdict == "lost" and args.keep_lost:
                        shutil.copyfile(
                            img,
                            os.path.join(args.keep_lost, f"lost-e{k}-{kind.replace(':', '_')}.img"),
                        )
                print(line, flush=True)
                if report:
                    report.write(line + "\n")
                os.remove(img)
            for e in vol:
                dev.apply(e)
    finally:
        dev.close()
        shutil.rmtree(work, ignore_errors=True)
        if report:
            report.close()
    print(
        f"LOGWRITES states={len(states)} checked={counts['checked']} "
        f"intact={counts['intact']} by_design={counts['by_design']} lost={counts['lost']}",
        flush=True,
    )
    return 1 if counts["lost"] else 0


def size_arg(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s and s[-1].upper() in mult:
        return int(s[:-1]) * mult[s[-1].upper()]
    return int(s)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("info")
    i.add_argument("log")
    r = sub.add_parser("replay")
    r.add_argument("base")
    r.add_argument("log")
    r.add_argument("out")
    r.add_argument("--epoch", type=int, required=True)
    r.add_argument("--keep", default="all")
    r.add_argument("--header-bytes", type=size_arg, default=16 << 20)
    s = sub.add_parser("sweep")
    s.add_argument("base")
    s.add_argument("log")
    s.add_argument("--check", required=True, help="command (split on spaces)")
    s.add_argument("--header-bytes", type=size_arg, default=16 << 20)
    s.add_argument("--sample", type=int, default=0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--random-subsets", type=int, default=2)
    s.add_argument("--report")
    s.add_argument("--keep-lost", help="copy lost images into this directory")
    s.add_argument("--tmp", default=None)
    a = p.parse_args()
    try:
        if a.cmd == "info":
            ss, entries = parse(a.log)
            eps = epochs(entries)
            print(f"sectorsize {ss}, {len(entries)} entries, {len(eps)} epochs")
            for k, ep in enumerate(eps):
                print(f"epoch {k}: {len(ep)} volatile writes, "
                      f"{sum(e.nr_sectors for e in ep) * ss} bytes")
            for e in entries:
                if e.flags & MARK:
                    print(f"mark at entry {e.index}: {e.mark}")
            return 0
        if a.cmd == "replay":
            replay(a.base, a.log, a.out, a.epoch, a.keep, a.header_bytes)
            return 0
        a.check = a.check.split()
        return sweep(a)
    except (ValueError, OSError) as e:
        print(f"logwrites: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
