/**
 * Model-based test of the IOAS: random sequences of MAP (fixed and
 * automatic), UNMAP (exact, several areas, partial, unmap-all), COPY,
 * IOVA_RANGES, ADD_RESERVED and ALLOW_IOVAS run against the model and against
 * the plain reference in helpers-d.ts. After every step the rc, the value
 * written back, the areas and IOVA ranges proc.inspect reports, and (with a
 * mock domain) every page's pin count and the mock page table must agree.
 */
import { IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_WRITEABLE } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Host, Process } from '../src/index.js';
import {
  addReserved,
  allowIovas,
  checkMap,
  checkRefs,
  copy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  setup,
  unmap,
} from './helpers.js';
import { MAX, RefContext, RefIoas, type RefResult, type Span } from './helpers-d.js';

const PAGE = 4096n;
const BUF_PAGES = 16;
const BUF = BigInt(BUF_PAGES) * PAGE;
const R = IOMMU_IOAS_MAP_READABLE;
const W = IOMMU_IOAS_MAP_WRITEABLE;
const MiB = 1n << 20n;
const GiB = 1n << 30n;

// ---- actions -----------------------------------------------------------------

/** 0 = IOAS A, 1 = IOAS B, 2 = an id that is not an IOAS. */
type IoasSel = 0 | 1 | 2;
type UptrSel = { kind: 'buf'; off: bigint } | { kind: 'abs'; va: bigint };
type IovaSel =
  | { kind: 'win'; k: number; byte: number }
  | { kind: 'edge'; n: number }
  | { kind: 'abs'; v: bigint };
type RangeSel =
  | { kind: 'area'; i: number; span: number; lo: number; hi: number }
  | { kind: 'sub'; i: number; off: number; len: bigint }
  | { kind: 'win'; k: number; len: bigint }
  | { kind: 'abs'; iova: bigint; length: bigint };

type Action =
  | {
      kind: 'map';
      ioas: IoasSel;
      flags: number;
      uptr: UptrSel;
      length: bigint;
      iova: IovaSel | null;
    }
  | { kind: 'unmap'; ioas: IoasSel; range: RangeSel | 'all' }
  | {
      kind: 'copy';
      dst: IoasSel;
      src: IoasSel;
      range: RangeSel;
      flags: number;
      iova: IovaSel | null;
    }
  | { kind: 'reserve'; ioas: IoasSel; start: IovaSel; length: bigint }
  | { kind: 'ranges'; ioas: IoasSel; room: number }
  | { kind: 'allow'; ioas: IoasSel; ranges: { k: number; pages: number; adjacent: boolean }[] };

const ioasSel = fc.oneof(
  { arbitrary: fc.constantFrom<IoasSel>(0, 1), weight: 20 },
  { arbitrary: fc.constant<IoasSel>(2), weight: 1 },
);
const flagsArb = fc.oneof(
  { arbitrary: fc.constant(R | W), weight: 12 },
  { arbitrary: fc.constantFrom(R, W), weight: 4 },
  { arbitrary: fc.constantFrom(0, R | W | 0x100), weight: 1 },
);
const uptrArb: fc.Arbitrary<UptrSel> = fc.oneof(
  {
    arbitrary: fc
      .integer({ min: 0, max: 2 * BUF_PAGES - 1 })
      .map((k) => ({ kind: 'buf' as const, off: BigInt(k) * 2048n })),
    weight: 14,
  },
  {
    arbitrary: fc.bigInt({ min: 0n, max: BUF - 1n }).map((off) => ({ kind: 'buf' as const, off })),
    weight: 3,
  },
  {
    arbitrary: fc
      .integer({ min: -4, max: 2 * BUF_PAGES + 4 })
      .map((k) => ({ kind: 'buf' as const, off: BigInt(k) * 2048n })),
    weight: 2,
  },
  {
    arbitrary: fc
      .constantFrom(0n, 1n << 31n, 1n << 63n, MAX - 4095n, MAX - 1n)
      .map((va) => ({ kind: 'abs' as const, va })),
    weight: 1,
  },
);
const lengthArb = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 8 }).map((k) => BigInt(k) * 2048n), weight: 14 },
  { arbitrary: fc.bigInt({ min: 1n, max: 3n * PAGE }), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 4 }).map((k) => BigInt(k) * 16n * 1024n), weight: 2 },
  { arbitrary: fc.constantFrom(0n, MAX, MAX - 1n, MAX - 4096n, MAX / 2n, 1n << 62n), weight: 1 },
);
const iovaArb: fc.Arbitrary<IovaSel> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('win' as const),
      k: fc.integer({ min: 0, max: 63 }),
      byte: fc.oneof(
        { arbitrary: fc.constant(0), weight: 6 },
        { arbitrary: fc.integer({ min: 1, max: 4095 }), weight: 1 },
      ),
    }),
    weight: 16,
  },
  { arbitrary: fc.record({ kind: fc.constant('edge' as const), n: fc.nat(7) }), weight: 3 },
  {
    arbitrary: fc.bigInt({ min: 0n, max: MAX }).map((v) => ({ kind: 'abs' as const, v })),
    weight: 1,
  },
);
/** Ranges for UNMAP and COPY sources, mostly taken from the areas that exist when the step runs. */
const rangeArb: fc.Arbitrary<RangeSel> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('area' as const),
      i: fc.nat(40),
      span: fc.oneof(
        { arbitrary: fc.constant(1), weight: 3 },
        { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 1 },
      ),
      // Bytes before the first / after the last area: negative cuts into it.
      lo: fc.constantFrom(0, 0, 0, 0, 2048, 4096, -2048, 1),
      hi: fc.constantFrom(0, 0, 0, 0, 2048, 8192, -2048, -1),
    }),
    weight: 12,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('sub' as const),
      i: fc.nat(40),
      off: fc.oneof(
        { arbitrary: fc.nat(16).map((k) => k * 2048), weight: 3 },
        { arbitrary: fc.nat(65535), weight: 1 },
      ),
      len: fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 16 }).map((k) => BigInt(k) * 2048n), weight: 3 },
        { arbitrary: fc.bigInt({ min: 1n, max: 65536n }), weight: 1 },
      ),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('win' as const),
      k: fc.integer({ min: 0, max: 63 }),
      len: fc.integer({ min: 1, max: 32 }).map((n) => BigInt(n) * 2048n),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('abs' as const),
      iova: fc.constantFrom(0n, MAX, MAX - 4095n, 1n << 63n),
      length: fc.constantFrom(0n, 1n, 4096n, MAX, MAX - 1n),
    }),
    weight: 1,
  },
);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      ioas: ioasSel,
      flags: flagsArb,
      uptr: uptrArb,
      length: lengthArb,
      iova: fc.option(iovaArb, { nil: null, freq: 2 }),
    }),
    weight: 10,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('unmap' as const),
      ioas: ioasSel,
      range: fc.oneof(
        { arbitrary: rangeArb, weight: 12 },
        { arbitrary: fc.constant('all' as const), weight: 1 },
      ),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('copy' as const),
      dst: ioasSel,
      src: ioasSel,
      range: rangeArb,
      flags: flagsArb,
      iova: fc.option(iovaArb, { nil: null, freq: 2 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      ioas: ioasSel,
      start: iovaArb,
      length: fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 8 }).map((k) => BigInt(k) * 2048n), weight: 4 },
        { arbitrary: fc.bigInt({ min: 1n, max: 3n * PAGE }), weight: 1 },
      ),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('ranges' as const), ioas: ioasSel, room: fc.nat(4) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('allow' as const),
      ioas: ioasSel,
      ranges: fc.array(
        fc.record({
          k: fc.nat(63),
          pages: fc.integer({ min: 0, max: 16 }),
          adjacent: fc.boolean(),
        }),
        { maxLength: 3 },
      ),
    }),
    weight: 2,
  },
);

// ---- one run -------------------------------------------------------------------

interface Config {
  readonly name: string;
  /** Which of IOAS A and B get a mock domain. */
  readonly domains: readonly [boolean, boolean];
}

class Run {
  readonly host: Host;
  readonly proc: Process;
  readonly fd: number;
  readonly buf: bigint;
  readonly ids: [number, number];
  readonly hwpts: (number | undefined)[] = [];
  readonly ref: RefContext;
  readonly log: string[] = [];

  constructor(readonly config: Config) {
    const { host, proc, fd } = setup();
    this.host = host;
    this.proc = proc;
    this.fd = fd;
    this.buf = proc.mmap(BUF);
    this.ids = [ioasAlloc(proc, fd), ioasAlloc(proc, fd)];
    const buf = this.buf;
    this.ref = new RefContext((va) => va >= buf && va < buf + BUF);
    this.ids.forEach((id, i) => {
      const withDomain = config.domains[i] === true;
      if (withDomain) {
        const md = mockDomain(proc, fd, id);
        if (md.rc !== 0) throw new Error(`MOCK_DOMAIN failed ${md.rc}`);
        this.hwpts.push(md.hwptId);
      } else this.hwpts.push(undefined);
      this.ref.ioas.set(id, new RefIoas(id, withDomain));
    });
  }

  id(sel: IoasSel): number {
    if (sel === 2) return this.hwpts.find((h) => h !== undefined) ?? 99;
    return this.ids[sel];
  }

  refIoas(sel: IoasSel): RefIoas | undefined {
    return this.ref.ioas.get(this.id(sel));
  }

  iova(sel: IovaSel, ioas: RefIoas | undefined): bigint {
    const domain = ioas?.domain === true;
    const base = domain ? 16n * MiB : 0n;
    switch (sel.kind) {
      case 'win':
        return base + BigInt(sel.k) * 2048n + BigInt(sel.byte);
      case 'edge': {
        const edges = domain
          ? [
              16n * MiB - 2048n,
              16n * MiB,
              2n * GiB - 2048n,
              2n * GiB - 4096n,
              2n * GiB,
              16n * MiB - 4096n,
              2n * GiB - 16384n,
              0n,
            ]
          : [0n, MAX - 4095n, MAX - 8191n, MAX - 2047n, MAX, PAGE, MAX - 65535n, 1n << 63n];
        return edges[sel.n % edges.length] as bigint;
      }
      default:
        return sel.v;
    }
  }

  range(sel: RangeSel, ioas: RefIoas | undefined): { iova: bigint; length: bigint } {
    if (sel.kind === 'abs') return { iova: sel.iova, length: sel.length };
    if (sel.kind === 'win' || ioas === undefined || ioas.areas.length === 0) {
      const k = sel.kind === 'win' ? sel.k : 0;
      const len = sel.kind === 'win' ? sel.len : 4096n;
      return { iova: this.iova({ kind: 'win', k, byte: 0 }, ioas), length: len };
    }
    const areas = ioas.areas;
    if (sel.kind === 'sub') {
      // A piece inside one area, at any offset (COPY takes those).
      const a = areas[sel.i % areas.length] as (typeof areas)[number];
      const size = a.last - a.iova + 1n;
      const start = a.iova + (BigInt(sel.off) % size);
      const room = a.last - start + 1n;
      return { iova: start, length: sel.len < room ? sel.len : room };
    }
    const first = areas[sel.i % areas.length] as (typeof areas)[number];
    const lastArea = areas[
      Math.min(areas.indexOf(first) + sel.span - 1, areas.length - 1)
    ] as (typeof areas)[number];
    // Keep every field a u64: clamp the padded range to [0, 2^64 - 1] and the length to U64_MAX.
    let start = first.iova - BigInt(sel.lo);
    if (start < 0n) start = 0n;
    if (start > MAX) start = MAX;
    let last = lastArea.last + BigInt(sel.hi);
    if (last > MAX) last = MAX;
    if (last < start) last = start;
    const length = last - start + 1n;
    return { iova: start, length: length > MAX ? MAX : length };
  }

  uptr(sel: UptrSel): bigint {
    return sel.kind === 'buf' ? this.buf + sel.off : sel.va;
  }

  /** Run one action on the model and the reference and compare. */
  step(a: Action): void {
    const { proc, fd } = this;
    let got: { rc: number; value: bigint };
    let want: RefResult;
    let passed: bigint; // what the value field held before the call
    switch (a.kind) {
      case 'map': {
        const ioas = this.refIoas(a.ioas);
        const uptr = this.uptr(a.uptr);
        const iova = a.iova === null ? undefined : this.iova(a.iova, ioas);
        this.log.push(
          `map ioas=${this.id(a.ioas)} flags=${a.flags} uptr=buf+${uptr - this.buf} len=${a.length} iova=${iova}`,
        );
        const r = map(proc, fd, this.id(a.ioas), uptr, a.length, iova, a.flags);
        got = { rc: r.rc, value: r.iova };
        want = this.ref.map(this.id(a.ioas), a.flags, uptr, a.length, iova);
        passed = iova ?? 0n;
        break;
      }
      case 'unmap': {
        const ioas = this.refIoas(a.ioas);
        const { iova, length } =
          a.range === 'all' ? { iova: 0n, length: MAX } : this.range(a.range, ioas);
        this.log.push(`unmap ioas=${this.id(a.ioas)} iova=${iova} len=${length}`);
        const r = unmap(proc, fd, this.id(a.ioas), iova, length);
        got = { rc: r.rc, value: r.length };
        want = this.ref.unmap(this.id(a.ioas), iova, length);
        passed = length;
        break;
      }
      case 'copy': {
        const { iova: srcIova, length } = this.range(a.range, this.refIoas(a.src));
        const dstIova = a.iova === null ? undefined : this.iova(a.iova, this.refIoas(a.dst));
        this.log.push(
          `copy ${this.id(a.src)}->${this.id(a.dst)} src=${srcIova} len=${length} dst=${dstIova} flags=${a.flags}`,
        );
        const r = copy(proc, fd, this.id(a.dst), this.id(a.src), srcIova, length, dstIova, a.flags);
        got = { rc: r.rc, value: r.iova };
        want = this.ref.copy(this.id(a.dst), this.id(a.src), srcIova, length, dstIova, a.flags);
        passed = dstIova ?? 0n;
        break;
      }
      case 'reserve': {
        const ioas = this.refIoas(a.ioas);
        const start = this.iova(a.start, ioas);
        const length = start + a.length - 1n > MAX ? MAX - start + 1n : a.length;
        this.log.push(`reserve ioas=${this.id(a.ioas)} start=${start} len=${length}`);
        const rc = addReserved(proc, fd, this.id(a.ioas), start, length);
        got = { rc, value: 0n };
        want = { rc: ioas === undefined ? -2 : ioas.addReserved(start, length) };
        passed = 0n;
        break;
      }
      case 'ranges': {
        const ioas = this.refIoas(a.ioas);
        this.log.push(`iova_ranges ioas=${this.id(a.ioas)} room=${a.room}`);
        const r = iovaRanges(proc, fd, this.id(a.ioas), a.room);
        if (ioas === undefined) {
          expect(r.rc, this.trace()).toBe(-2);
        } else {
          const ranges = ioas.iovaRanges();
          expect(r.rc, this.trace()).toBe(ranges.length > a.room ? -90 : 0); // EMSGSIZE
          expect(r.num, this.trace()).toBe(ranges.length);
          expect(r.alignment, this.trace()).toBe(ioas.alignment);
          expect(r.ranges, this.trace()).toEqual(ranges.slice(0, a.room));
        }
        this.checkState();
        return;
      }
      case 'allow': {
        const ioas = this.refIoas(a.ioas);
        const ranges: Span[] = [];
        let prevEnd = -1n;
        for (const x of a.ranges) {
          const start =
            x.adjacent && prevEnd >= 0n
              ? prevEnd + 1n
              : this.iova({ kind: 'win', k: x.k, byte: 0 }, ioas);
          const last = start + BigInt(x.pages) * PAGE - 1n;
          ranges.push({ start, last: last < start ? start : last });
          prevEnd = last < start ? start : last;
        }
        this.log.push(
          `allow ioas=${this.id(a.ioas)} ${ranges.map((r) => `[${r.start},${r.last}]`).join(' ')}`,
        );
        const rc = allowIovas(proc, fd, this.id(a.ioas), ranges);
        got = { rc, value: 0n };
        want = { rc: ioas === undefined ? -2 : ioas.allowIovas(ranges) };
        passed = 0n;
        break;
      }
    }
    expect(got.rc, this.trace()).toBe(want.rc);
    // The value is written back only on success.
    expect(got.value, this.trace()).toBe(
      want.rc === 0 && want.value !== undefined ? want.value : passed,
    );
    this.checkState();
  }

  trace(): string {
    const err = this.proc.lastError();
    return `${this.config.name}\n  ${this.log.join('\n  ')}\nlast error: ${err?.name} ${err?.reason}`;
  }

  /** Areas and ranges as inspect reports them, pins and the mock page tables. */
  checkState(): void {
    const report = this.proc.inspect(this.fd);
    this.ids.forEach((id, i) => {
      const ref = this.ref.ioas.get(id) as RefIoas;
      const mine = report?.ioas.find((x) => x.id === id);
      expect(
        mine?.areas.map((x) => [x.iova, x.last, x.pinned]),
        this.trace(),
      ).toEqual(ref.areas.map((x) => [x.iova, x.last, ref.domain]));
      expect(mine?.iovaRanges, this.trace()).toEqual(ref.iovaRanges());
      const hwpt = this.hwpts[i];
      if (hwpt === undefined) return;
      for (const x of ref.areas) {
        const rc = checkMap(
          this.proc,
          this.fd,
          hwpt,
          x.iova,
          x.last - x.iova + 1n,
          x.pages.base + x.startByte,
        );
        expect(rc, `CHECK_MAP [${x.iova}, ${x.last}]: ${this.trace()}`).toBe(0);
      }
    });
    if (!this.config.domains.includes(true)) {
      expect(this.host.pinnedPages(), this.trace()).toBe(0);
      return;
    }
    const pins = this.ref.expectedPins(this.buf, BUF_PAGES);
    for (let p = 0; p < BUF_PAGES; ) {
      let q = p + 1;
      while (q < BUF_PAGES && pins[q] === pins[p]) q++;
      const rc = checkRefs(
        this.proc,
        this.fd,
        this.buf + BigInt(p) * PAGE,
        BigInt(q - p) * PAGE,
        pins[p] as number,
      );
      expect(rc, `CHECK_REFS pages ${p}..${q - 1} = ${pins[p]}: ${this.trace()}`).toBe(0);
      p = q;
    }
    expect(this.host.pinnedPages(), this.trace()).toBe(pins.filter((n) => n > 0).length);
  }

  /** Close the fd: nothing stays pinned and nothing threw. */
  finish(): void {
    expect(this.proc.close(this.fd)).toBe(0);
    expect(this.host.pinnedPages(), this.trace()).toBe(0);
    expect(this.host.internalErrors, this.trace()).toBe(0);
  }
}

/** Sequences that once failed, replayed first in every configuration. */
const REGRESSIONS: Action[][] = [
  // Adjacent allowed ranges are one span for the automatic IOVA (catalog 41; the model searched each alone).
  [
    {
      kind: 'allow',
      ioas: 0,
      ranges: [
        { k: 1, pages: 1, adjacent: false },
        { k: 0, pages: 1, adjacent: true },
      ],
    },
    { kind: 'map', ioas: 0, flags: W, uptr: { kind: 'buf', off: 0n }, length: 4096n, iova: null },
  ],
  // An area ending at 2^64 - 1, and a COPY source padded past it (the test once built an out-of-u64 field).
  [
    {
      kind: 'map',
      ioas: 1,
      flags: R | W,
      uptr: { kind: 'buf', off: 0n },
      length: 2048n,
      iova: { kind: 'edge', n: 3 },
    },
    {
      kind: 'copy',
      dst: 0,
      src: 1,
      range: { kind: 'area', i: 0, span: 1, lo: -2048, hi: 0 },
      flags: R | W,
      iova: null,
    },
  ],
  // After an unmap the freed hole below the remaining areas is found again (a range-tree gap update).
  [
    {
      kind: 'map',
      ioas: 0,
      flags: R | W,
      uptr: { kind: 'buf', off: 30720n },
      length: 65536n,
      iova: null,
    },
    {
      kind: 'map',
      ioas: 0,
      flags: R | W,
      uptr: { kind: 'buf', off: 2048n },
      length: 32768n,
      iova: null,
    },
    { kind: 'map', ioas: 0, flags: R | W, uptr: { kind: 'buf', off: 0n }, length: 1n, iova: null },
    {
      kind: 'copy',
      dst: 0,
      src: 0,
      range: { kind: 'area', i: 0, span: 1, lo: 0, hi: 0 },
      flags: W,
      iova: { kind: 'win', k: 51, byte: 0 },
    },
    {
      kind: 'map',
      ioas: 0,
      flags: R | W,
      uptr: { kind: 'buf', off: 0n },
      length: 16384n,
      iova: null,
    },
    { kind: 'unmap', ioas: 0, range: { kind: 'area', i: 1, span: 1, lo: 0, hi: 0 } },
    {
      kind: 'copy',
      dst: 0,
      src: 0,
      range: { kind: 'sub', i: 3, off: 0, len: 10240n },
      flags: W,
      iova: null,
    },
  ],
];

const CONFIGS: Config[] = [
  { name: 'no domain', domains: [false, false] },
  { name: 'mock domain on IOAS A', domains: [true, false] },
  { name: 'mock domains on both IOASes', domains: [true, true] },
];

describe('IOAS against a reference model (MAP, UNMAP, COPY, IOVA_RANGES, ADD_RESERVED, ALLOW_IOVAS)', () => {
  for (const config of CONFIGS) {
    it(`43-94, 26-41: random action sequences agree with the reference (${config.name})`, () => {
      fc.assert(
        fc.property(
          fc.array(actionArb, { minLength: 1, maxLength: 60, size: 'max' }),
          (actions) => {
            const run = new Run(config);
            run.checkState();
            for (const a of actions) run.step(a);
            run.finish();
          },
        ),
        { numRuns: 60, examples: REGRESSIONS.map((actions) => [actions] as [Action[]]) },
      );
    });
  }
});
