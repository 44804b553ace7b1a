/**
 * Conformance: IOMMU_IOAS_IOVA_RANGES (catalog 2.4) and
 * IOMMU_IOAS_ALLOW_IOVAS (2.5).
 */
import {
  EADDRINUSE,
  EFAULT,
  EINVAL,
  EMSGSIZE,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  IOMMU_IOAS_ALLOW_IOVAS,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  addReserved,
  allowIovas,
  destroy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  PAGE,
  setup,
  U64_MAX,
  unmap,
} from './helpers.js';
import {
  closeClean,
  expectErrno,
  ioasReport,
  MOCK_LAST,
  MOCK_START,
  objectIds,
  rangeAt,
  rangesInto,
} from './helpers-a.js';

const FULL = { start: 0n, last: U64_MAX };
const APERTURE = { start: MOCK_START, last: MOCK_LAST };

/** A page of process memory filled with 0xa5, for arrays the kernel must not touch. */
function patterned(proc: ReturnType<typeof setup>['proc']): bigint {
  const va = proc.mmap(4096);
  expect(proc.writeMemory(va, new Uint8Array(4096).fill(0xa5))).toBe(0);
  return va;
}

const UNTOUCHED = { start: 0xa5a5a5a5a5a5a5a5n, last: 0xa5a5a5a5a5a5a5a5n };

describe('2.4 IOMMU_IOAS_IOVA_RANGES', () => {
  it('26: a fresh IOAS → one range [0, 2^64-1], out_iova_alignment 1', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const arr = patterned(proc);
    const r = rangesInto(proc, fd, ioas, 8, arr, { alignment: 0xdeadn });
    expect(r).toEqual({ rc: 0, num: 1, alignment: 1n });
    expect(rangeAt(proc, arr, 0)).toEqual(FULL);
    // Only as many entries as there are ranges are written.
    expect(rangeAt(proc, arr, 1)).toEqual(UNTOUCHED);
    closeClean(host, proc, fd);
  });

  it('27: after a mock device is attached → one range [0x1000000, 0x7fffffff], alignment 2048; back to full after it goes', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({
      rc: 0,
      num: 1,
      alignment: 2048n,
      ranges: [APERTURE],
    });
    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({
      rc: 0,
      num: 1,
      alignment: 1n,
      ranges: [FULL],
    });
    closeClean(host, proc, fd);
  });

  it('28: num_iovas=0 → EMSGSIZE, num_iovas set to the count (1), alignment written, the array untouched', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const arr = patterned(proc);
    const r = rangesInto(proc, fd, ioas, 0, arr, { alignment: 0xdeadn });
    expectErrno(proc, r.rc, EMSGSIZE, 'IOMMU_IOAS_IOVA_RANGES');
    expect(r.num).toBe(1);
    expect(r.alignment).toBe(1n);
    expect(rangeAt(proc, arr, 0)).toEqual(UNTOUCHED);
    // With no room nothing is written, so even a NULL array is fine.
    const n = rangesInto(proc, fd, ioas, 0, 0n);
    expectErrno(proc, n.rc, EMSGSIZE, 'IOMMU_IOAS_IOVA_RANGES');
    expect(n.num).toBe(1);
    closeClean(host, proc, fd);
  });

  it('29: ADD_RESERVED [PAGE, 2·PAGE-1] without a domain → two ranges [0, PAGE-1] and [2·PAGE, 2^64-1]', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, ioas, PAGE, PAGE)).toBe(0);
    const arr = patterned(proc);
    const r = rangesInto(proc, fd, ioas, 256, arr);
    expect(r).toEqual({ rc: 0, num: 2, alignment: 1n });
    expect(rangeAt(proc, arr, 0)).toEqual({ start: 0n, last: PAGE - 1n });
    expect(rangeAt(proc, arr, 1)).toEqual({ start: 2n * PAGE, last: U64_MAX });
    expect(rangeAt(proc, arr, 2)).toEqual(UNTOUCHED);
    closeClean(host, proc, fd);
  });

  it('30: the same reservation below the mock aperture → still the one aperture range', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    expect(addReserved(proc, fd, ioas, PAGE, PAGE)).toBe(0);
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({ rc: 0, num: 1, ranges: [APERTURE] });
    // With room for one range that is enough: no EMSGSIZE.
    expect(iovaRanges(proc, fd, ioas, 1)).toMatchObject({ rc: 0, num: 1, ranges: [APERTURE] });
    // A reservation inside the aperture splits it.
    expect(addReserved(proc, fd, ioas, MOCK_START + PAGE, PAGE)).toBe(0);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([
      { start: MOCK_START, last: MOCK_START + PAGE - 1n },
      { start: MOCK_START + 2n * PAGE, last: MOCK_LAST },
    ]);
    closeClean(host, proc, fd);
  });

  it('31: num_iovas=1 with 2 real ranges → EMSGSIZE, num_iovas=2, first entry filled, second untouched', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, ioas, PAGE, PAGE)).toBe(0);
    const arr = patterned(proc);
    const r = rangesInto(proc, fd, ioas, 1, arr);
    expectErrno(proc, r.rc, EMSGSIZE, 'IOMMU_IOAS_IOVA_RANGES');
    expect(r.num).toBe(2);
    expect(r.alignment).toBe(1n);
    expect(rangeAt(proc, arr, 0)).toEqual({ start: 0n, last: PAGE - 1n });
    expect(rangeAt(proc, arr, 1)).toEqual(UNTOUCHED);
    closeClean(host, proc, fd);
  });

  it('32: __reserved≠0 → EOPNOTSUPP; unknown ioas → ENOENT; an unwritable array → EFAULT', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const arr = patterned(proc);
    const bad = rangesInto(proc, fd, ioas, 8, arr, { reserved: 1, alignment: 0xdeadn });
    expectErrno(proc, bad.rc, EOPNOTSUPP, 'IOMMU_IOAS_IOVA_RANGES');
    // Nothing is written back on these failures.
    expect(bad).toMatchObject({ num: 8, alignment: 0xdeadn });
    expect(rangeAt(proc, arr, 0)).toEqual(UNTOUCHED);
    for (const id of [0, ioas + 1, 0xffffffff]) {
      const r = rangesInto(proc, fd, id, 8, arr, { alignment: 0xdeadn });
      expectErrno(proc, r.rc, ENOENT, 'IOMMU_IOAS_IOVA_RANGES');
      expect(r).toMatchObject({ num: 8, alignment: 0xdeadn });
    }
    const ro = proc.mmap(4096, { readOnly: true });
    expectErrno(proc, rangesInto(proc, fd, ioas, 8, ro).rc, EFAULT, 'IOMMU_IOAS_IOVA_RANGES');
    closeClean(host, proc, fd);
  });

  it('33: the allowed list does not change the reported ranges', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, ioas, PAGE, PAGE)).toBe(0);
    const before = iovaRanges(proc, fd, ioas);
    expect(allowIovas(proc, fd, ioas, [{ start: 16n * PAGE, last: 32n * PAGE - 1n }])).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed.length).toBe(1);
    expect(iovaRanges(proc, fd, ioas)).toEqual(before);
    expect(before.ranges.length).toBe(2);
    closeClean(host, proc, fd);
  });
});

describe('2.5 IOMMU_IOAS_ALLOW_IOVAS', () => {
  it('34: a range with start ≥ last (a 1-byte range too) → EINVAL, the old list kept', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const old = { start: 0x100000n, last: 0x1fffffn };
    expect(allowIovas(proc, fd, ioas, [old])).toBe(0);
    for (const r of [
      { start: 5n * PAGE, last: 5n * PAGE },
      { start: 6n * PAGE, last: 5n * PAGE },
      { start: U64_MAX, last: 0n },
    ]) {
      expectErrno(proc, allowIovas(proc, fd, ioas, [r]), EINVAL, 'IOMMU_IOAS_ALLOW_IOVAS');
      // A bad second entry fails the whole call too.
      expectErrno(
        proc,
        allowIovas(proc, fd, ioas, [{ start: 0n, last: PAGE - 1n }, r]),
        EINVAL,
        'IOMMU_IOAS_ALLOW_IOVAS',
      );
      expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([old]);
    }
    // Two bytes is the smallest range.
    expect(allowIovas(proc, fd, ioas, [{ start: 7n, last: 8n }])).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([{ start: 7n, last: 8n }]);
    closeClean(host, proc, fd);
  });

  it('35: two input ranges that overlap → EINVAL (touching is fine)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const a = { start: 0x10000n, last: 0x1ffffn };
    for (const b of [
      { start: 0x1f000n, last: 0x2ffffn },
      { start: 0x1ffffn, last: 0x2ffffn },
      { start: 0x0n, last: 0x10000n },
      { start: 0x14000n, last: 0x15000n },
      a,
    ]) {
      expectErrno(proc, allowIovas(proc, fd, ioas, [a, b]), EINVAL, 'IOMMU_IOAS_ALLOW_IOVAS');
      expectErrno(proc, allowIovas(proc, fd, ioas, [b, a]), EINVAL, 'IOMMU_IOAS_ALLOW_IOVAS');
    }
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([]);
    const next = { start: 0x20000n, last: 0x2ffffn };
    expect(allowIovas(proc, fd, ioas, [next, a])).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([a, next]);
    closeClean(host, proc, fd);
  });

  it('36: an allowed range that intersects a reserved range → EADDRINUSE, and the previous list is kept', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, ioas, 4n * PAGE, 100n * PAGE)).toBe(0);
    const old = { start: 200n * PAGE, last: 600n * PAGE - 1n };
    expect(allowIovas(proc, fd, ioas, [old])).toBe(0);
    // The area_auto_iova case: [PAGE, 600·PAGE] covers the reservation.
    expectErrno(
      proc,
      allowIovas(proc, fd, ioas, [{ start: PAGE, last: 600n * PAGE }]),
      EADDRINUSE,
      'IOMMU_IOAS_ALLOW_IOVAS',
    );
    // Only the second of two ranges touches it (its last byte is the reservation's first).
    expectErrno(
      proc,
      allowIovas(proc, fd, ioas, [
        { start: 1000n * PAGE, last: 1001n * PAGE },
        { start: 0n, last: 4n * PAGE },
      ]),
      EADDRINUSE,
      'IOMMU_IOAS_ALLOW_IOVAS',
    );
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([old]);
    // Right up to it is fine.
    expect(allowIovas(proc, fd, ioas, [{ start: 0n, last: 4n * PAGE - 1n }])).toBe(0);
    closeClean(host, proc, fd);
  });

  it('36: with a device attached, an allowed range outside the aperture → EADDRINUSE', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    const inside = { start: MOCK_START + PAGE, last: MOCK_START + 600n * PAGE - 1n };
    expect(allowIovas(proc, fd, ioas, [inside])).toBe(0);
    for (const r of [
      { start: PAGE, last: 600n * PAGE },
      { start: MOCK_LAST, last: MOCK_LAST + PAGE },
      { start: MOCK_START - 1n, last: MOCK_START },
    ]) {
      expectErrno(proc, allowIovas(proc, fd, ioas, [r]), EADDRINUSE, 'IOMMU_IOAS_ALLOW_IOVAS');
    }
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([inside]);
    closeClean(host, proc, fd);
  });

  it('37: num_iovas=0 clears the allowed list (area_allowed)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const r = { start: PAGE, last: 601n * PAGE };
    expect(allowIovas(proc, fd, ioas, [r])).toBe(0);
    expectErrno(proc, addReserved(proc, fd, ioas, 2n * PAGE, PAGE), EADDRINUSE, 'IOMMU_TEST_CMD');
    // num_iovas=0 with a NULL pointer: nothing is read.
    const b = structs.iommu_ioas_allow_iovas.encode({ size: 24, ioas_id: ioas });
    expect(proc.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, b)).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([]);
    expect(addReserved(proc, fd, ioas, 2n * PAGE, PAGE)).toBe(0);
    // And now the old list would hit the reservation.
    expectErrno(proc, allowIovas(proc, fd, ioas, [r]), EADDRINUSE, 'IOMMU_IOAS_ALLOW_IOVAS');
    closeClean(host, proc, fd);
  });

  it('38: each call replaces the whole list', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const a = { start: 0x100000n, last: 0x1fffffn };
    const b = { start: 0x400000n, last: 0x4fffffn };
    const c = { start: 0x800000n, last: 0x8fffffn };
    expect(allowIovas(proc, fd, ioas, [b, a])).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([a, b]);
    expect(allowIovas(proc, fd, ioas, [c])).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([c]);
    // Automatic IOVAs now come from c only.
    const buf = proc.mmap(4096);
    const m = map(proc, fd, ioas, buf, PAGE);
    expect(m.rc).toBe(0);
    expect(m.iova >= c.start && m.iova + PAGE - 1n <= c.last).toBe(true);
    closeClean(host, proc, fd);
  });

  it('ALLOW_IOVAS (code): __reserved≠0 → EOPNOTSUPP; unknown ioas → ENOENT; unreadable ranges → EFAULT', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const b = structs.iommu_ioas_allow_iovas.encode({ size: 24, ioas_id: ioas, __reserved: 1 });
    expectErrno(proc, proc.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, b), EOPNOTSUPP);
    expectErrno(proc, allowIovas(proc, fd, 9, []), ENOENT, 'IOMMU_IOAS_ALLOW_IOVAS');
    const gone = proc.mmap(4096);
    expect(proc.munmap(gone, 4096)).toBe(0);
    const c = structs.iommu_ioas_allow_iovas.encode({
      size: 24,
      ioas_id: ioas,
      num_iovas: 1,
      allowed_iovas: gone,
    });
    expectErrno(proc, proc.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, c), EFAULT, 'IOMMU_IOAS_ALLOW_IOVAS');
    expect(ioasReport(proc, fd, ioas)?.allowed).toEqual([]);
    closeClean(host, proc, fd);
  });

  it('39: with an allowed list, ADD_RESERVED that intersects it → EADDRINUSE; nothing reserved', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    const r = { start: MOCK_START, last: MOCK_START + 600n * PAGE };
    expect(allowIovas(proc, fd, ioas, [r])).toBe(0);
    const reservedBefore = ioasReport(proc, fd, ioas)?.reserved;
    expectErrno(
      proc,
      addReserved(proc, fd, ioas, MOCK_START + PAGE, PAGE),
      EADDRINUSE,
      'IOMMU_TEST_CMD',
    );
    expectErrno(proc, addReserved(proc, fd, ioas, r.last, PAGE), EADDRINUSE, 'IOMMU_TEST_CMD');
    expect(ioasReport(proc, fd, ioas)?.reserved).toEqual(reservedBefore);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([APERTURE]);
    // Outside the allowed range a reservation is fine.
    expect(addReserved(proc, fd, ioas, r.last + 1n, PAGE)).toBe(0);
    closeClean(host, proc, fd);
  });

  it('40: an allowed list outside a new domain’s aperture makes the attach fail with EADDRINUSE; nothing changes', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const low = { start: PAGE, last: 16n * PAGE - 1n };
    expect(allowIovas(proc, fd, ioas, [low])).toBe(0);
    const md = mockDomain(proc, fd, ioas);
    expectErrno(proc, md.rc, EADDRINUSE, 'IOMMU_TEST_CMD');
    expect(objectIds(proc, fd)).toEqual([{ id: ioas, type: 'IOAS' }]);
    expect(ioasReport(proc, fd, ioas)).toMatchObject({
      allowed: [low],
      reserved: [],
      iovaAlignment: 1,
      hwpts: [],
    });
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({ num: 1, alignment: 1n, ranges: [FULL] });
    // An allowed range inside the aperture lets the device attach, with the ids the failure gave back.
    expect(allowIovas(proc, fd, ioas, [{ start: MOCK_START, last: MOCK_LAST }])).toBe(0);
    const ok = mockDomain(proc, fd, ioas);
    expect(ok).toMatchObject({ rc: 0, stdevId: 2, idevId: 3, hwptId: 4 });
    closeClean(host, proc, fd);
  });

  it('41: automatic IOVAs come only from allowed ranges, each mapping inside one span (area_auto_iova)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(10 * 4096);
    const allowed = { start: 200n * PAGE, last: 600n * PAGE - 1n };
    expect(allowIovas(proc, fd, ioas, [allowed])).toBe(0);
    const got: { iova: bigint; length: bigint }[] = [];
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE * i;
      const m = map(proc, fd, ioas, buf, length);
      expect(m.rc).toBe(0);
      // Aligned to the lowest set bit of the length.
      expect(m.iova % (length & -length)).toBe(0n);
      expect(m.iova >= allowed.start && m.iova + length - 1n <= allowed.last).toBe(true);
      got.push({ iova: m.iova, length });
    }
    for (const g of got) expect(unmap(proc, fd, ioas, g.iova, g.length).rc).toBe(0);

    // A first range too small for the mapping is skipped; the mapping never straddles a gap.
    const tiny = { start: 0x10000n, last: 0x10fffn };
    const next = { start: 0x13000n, last: 0x1ffffn };
    expect(allowIovas(proc, fd, ioas, [tiny, next])).toBe(0);
    const two = map(proc, fd, ioas, buf, 2n * PAGE);
    expect(two).toEqual({ rc: 0, iova: 0x14000n });
    const one = map(proc, fd, ioas, buf, PAGE);
    expect(one).toEqual({ rc: 0, iova: tiny.start });
    // Nothing left that fits 16 pages in either range.
    expectErrno(proc, map(proc, fd, ioas, buf, 16n * PAGE).rc, ENOSPC, 'IOMMU_IOAS_MAP');
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(2);
    expect(unmap(proc, fd, ioas, 0n, U64_MAX).rc).toBe(0);

    // Ranges that touch form one span (interval_tree_span_iter merges them), so a mapping may cross.
    expect(allowIovas(proc, fd, ioas, [tiny, { start: 0x11000n, last: 0x1ffffn }])).toBe(0);
    expect(map(proc, fd, ioas, buf, 2n * PAGE)).toEqual({ rc: 0, iova: 0x10000n });
    closeClean(host, proc, fd);
  });

  it('41: with a device the allowed range inside the aperture is used (area_auto_iova, mock_domain)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    const buf = proc.mmap(10 * 4096);
    const allowed = { start: MOCK_START + PAGE, last: MOCK_START + 600n * PAGE - 1n };
    expect(allowIovas(proc, fd, ioas, [allowed])).toBe(0);
    for (let i = 1n; i <= 10n; i++) {
      const length = PAGE * i;
      const m = map(proc, fd, ioas, buf, length);
      expect(m.rc).toBe(0);
      expect(m.iova % (length & -length)).toBe(0n);
      expect(m.iova >= allowed.start && m.iova + length - 1n <= allowed.last).toBe(true);
    }
    expect(host.pinnedPages()).toBe(10);
    closeClean(host, proc, fd);
  });

  it('42: FIXED maps ignore the allowed list', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4096);
    expect(allowIovas(proc, fd, ioas, [{ start: 200n * PAGE, last: 600n * PAGE - 1n }])).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, 0n)).toEqual({ rc: 0, iova: 0n });
    expect(map(proc, fd, ioas, buf, PAGE, 1000n * PAGE)).toEqual({ rc: 0, iova: 1000n * PAGE });
    // Straddling the allowed range's end is fine too.
    expect(map(proc, fd, ioas, buf, PAGE, 600n * PAGE - 2048n).rc).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.areas.map((a) => a.iova)).toEqual([
      0n,
      600n * PAGE - 2048n,
      1000n * PAGE,
    ]);
    closeClean(host, proc, fd);
  });
});
