/**
 * Conformance of IOMMU_IOAS_MAP and IOMMU_IOAS_MAP_FILE with Linux 6.17
 * (kernel-semantics catalog 2.6, items 43–65, and 2.7, items 66–70), driven
 * through the syscall surface with real struct bytes. Expectations come from
 * the kernel's ioas.c / io_pagetable.c / pages.c and the iommufd selftests
 * (iommufd_ioas/area, area_auto_iova, reserved_overflow, ioas_iova_alloc,
 * ioas_align_change; iommufd_mock_domain/basic, all_aligns, all_aligns_copy).
 */
import {
  EADDRINUSE,
  EBADF,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import type { Process } from '../src/index.js';
import {
  addReserved,
  allowIovas,
  checkMap,
  checkRefs,
  destroy,
  FIXED,
  ioasAlloc,
  map,
  mockDomain,
  option,
  PAGE,
  RW,
  U64_MAX,
  unmap,
} from './helpers.js';
import {
  APERTURE,
  APERTURE_LAST,
  areasOf,
  buffer,
  closeAndCheck,
  env,
  HPAGE,
  hugeAlignedBuffer,
  MOCK_PAGE,
  mapFile,
  mapFileRaw,
  mapRaw,
  memfdBuffer,
  passFd,
} from './helpers-b.js';

const R = IOMMU_IOAS_MAP_READABLE;
const W = IOMMU_IOAS_MAP_WRITEABLE;
const TWO64 = 1n << 64n;
const PAGE_N = Number(PAGE);

function roundupPow2(v: bigint): bigint {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
}

/**
 * The alignment iopt_alloc_iova uses for an automatic IOVA: the next power
 * of two of the length, lowered to the source address's lowest set bit
 * (when the address is not 0), capped at the 2 MiB huge page size.
 */
function autoAlignment(length: bigint, addr: bigint): bigint {
  let a = roundupPow2(length);
  if (addr !== 0n) {
    const low = addr & -addr;
    if (low < a) a = low;
  }
  return a > HPAGE ? HPAGE : a;
}

/** Every automatic mapping lies in its own range: no two intersect. */
function expectDisjoint(ranges: [bigint, bigint][]): void {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (let i = 1; i < sorted.length; i++) {
    expect((sorted[i] as [bigint, bigint])[0]).toBeGreaterThan(
      (sorted[i - 1] as [bigint, bigint])[1],
    );
  }
}

/** The pages of [from, to) of `buf` are each pinned `refs` times (MD_CHECK_REFS). */
function expectRefs(
  proc: Process,
  fd: number,
  buf: bigint,
  from: bigint,
  to: bigint,
  refs: number,
) {
  if (to > from) expect(checkRefs(proc, fd, buf + from, to - from, refs)).toBe(0);
}

describe('2.6 IOMMU_IOAS_MAP: argument checks', () => {
  it('43: unknown flag bits or __reserved≠0 → EOPNOTSUPP, before every other check', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 4n * PAGE);
    for (const bad of [1 << 3, 1 << 4, (1 << 31) >>> 0, 0xfffffff8]) {
      const r = mapRaw(proc, fd, {
        flags: (RW | bad) >>> 0,
        ioas_id: ioas,
        user_va: buf,
        length: PAGE,
      });
      expect(r.rc).toBe(-EOPNOTSUPP);
    }
    const res = mapRaw(proc, fd, {
      flags: RW,
      __reserved: 1,
      ioas_id: ioas,
      user_va: buf,
      length: PAGE,
    });
    expect(res.rc).toBe(-EOPNOTSUPP);
    // Checked before the overflow, R/W and IOAS checks.
    const first = mapRaw(proc, fd, { flags: 1 << 3, ioas_id: 999, length: U64_MAX });
    expect(first.rc).toBe(-EOPNOTSUPP);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // The same map with valid flags and __reserved = 0 works.
    expect(mapRaw(proc, fd, { flags: RW, ioas_id: ioas, user_va: buf, length: PAGE }).rc).toBe(0);
    expect(areasOf(proc, fd, ioas)).toHaveLength(1);
    closeAndCheck(host, proc, fd);
  });

  it('44: neither READABLE nor WRITEABLE → EINVAL (after the overflow check, before the IOAS lookup)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    expect(mapRaw(proc, fd, { flags: 0, ioas_id: ioas, user_va: buf, length: PAGE }).rc).toBe(
      -EINVAL,
    );
    const fixedOnly = mapRaw(proc, fd, { flags: FIXED, ioas_id: ioas, user_va: buf, length: PAGE });
    expect(fixedOnly.rc).toBe(-EINVAL);
    expect(mapRaw(proc, fd, { flags: 0, ioas_id: 999, user_va: buf, length: PAGE }).rc).toBe(
      -EINVAL,
    );
    expect(mapRaw(proc, fd, { flags: 0, ioas_id: ioas, length: U64_MAX }).rc).toBe(-EOVERFLOW);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // Either permission alone is enough.
    expect(map(proc, fd, ioas, buf, PAGE, undefined, R).rc).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, undefined, W).rc).toBe(0);
    expect(areasOf(proc, fd, ioas)).toHaveLength(2);
    closeAndCheck(host, proc, fd);
  });

  it('45: iova or length ≥ ULONG_MAX → EOVERFLOW (iova is checked even without FIXED_IOVA)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    const cases = [
      { flags: RW, iova: U64_MAX, length: PAGE },
      { flags: RW | FIXED, iova: U64_MAX, length: PAGE },
      { flags: RW, iova: 0n, length: U64_MAX },
      { flags: RW | FIXED, iova: 0n, length: U64_MAX },
    ];
    for (const c of cases) {
      expect(mapRaw(proc, fd, { ...c, ioas_id: ioas, user_va: buf }).rc).toBe(-EOVERFLOW);
    }
    // Before the IOAS lookup.
    expect(mapRaw(proc, fd, { flags: RW, ioas_id: 999, iova: U64_MAX, length: PAGE }).rc).toBe(
      -EOVERFLOW,
    );
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // One below the limit is a valid FIXED iova on an IOAS without a domain.
    expect(map(proc, fd, ioas, buf, 1n, U64_MAX - 1n).rc).toBe(0);
    expect(areasOf(proc, fd, ioas)).toEqual([[U64_MAX - 1n, U64_MAX - 1n]]);
    closeAndCheck(host, proc, fd);
  });

  it('46: length 0 → EINVAL, automatic or FIXED', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    expect(map(proc, fd, ioas, buf, 0n).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buf, 0n, PAGE).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });

  it('47: user_va + length wraps → EOVERFLOW (checked before the length limit)', () => {
    const { host, proc, fd, ioas } = env(0);
    expect(map(proc, fd, ioas, TWO64 - PAGE, PAGE).rc).toBe(-EOVERFLOW);
    expect(map(proc, fd, ioas, TWO64 - PAGE, 2n * PAGE, 0n).rc).toBe(-EOVERFLOW);
    expect(map(proc, fd, ioas, PAGE, U64_MAX - 1n).rc).toBe(-EOVERFLOW);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // Ending just below 2^64 does not wrap; without a domain the VA is not even looked at.
    expect(map(proc, fd, ioas, TWO64 - 2n * PAGE, PAGE).rc).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('48: unknown ioas_id (0, unused, or another type of object) → ENOENT', () => {
    const { host, proc, fd, ioas, hwpts } = env(1);
    const buf = buffer(proc, PAGE);
    for (const id of [0, 999, hwpts[0] as number]) {
      expect(map(proc, fd, id, buf, PAGE).rc).toBe(-ENOENT);
    }
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(host.pinnedPages()).toBe(0);
    closeAndCheck(host, proc, fd);
  });
});

describe('2.6 IOMMU_IOAS_MAP: alignment and overlap', () => {
  it('49: with a mock domain every length % 2048 ≠ 0 in 1..2·PAGE−1 → EINVAL; without one every length maps', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas } = env(domains);
      const buf = hugeAlignedBuffer(proc);
      let mapped = 0;
      for (let length = 1n; length < 2n * PAGE; length++) {
        const r = map(proc, fd, ioas, buf, length);
        if (domains === 1 && length % MOCK_PAGE !== 0n) {
          expect(r.rc).toBe(-EINVAL);
          continue;
        }
        expect(r.rc).toBe(0);
        const u = unmap(proc, fd, ioas, r.iova, length);
        expect(u).toEqual({ rc: 0, length });
        mapped++;
      }
      expect(mapped).toBe(domains === 1 ? 3 : 8191);
      expect(areasOf(proc, fd, ioas)).toEqual([]);
      closeAndCheck(host, proc, fd);
    }
  });

  it('50: FIXED iova not aligned to iova_alignment → EINVAL (before the overflow and EEXIST checks)', () => {
    const { host, proc, fd, ioas, hwpts } = env(1);
    const buf = buffer(proc, 4n * PAGE);
    for (const off of [1n, 1024n, 2047n, 2049n]) {
      expect(map(proc, fd, ioas, buf, MOCK_PAGE, APERTURE + off).rc).toBe(-EINVAL);
    }
    expect(map(proc, fd, ioas, buf, 2n * PAGE, APERTURE).rc).toBe(0);
    // Misaligned and overlapping the area: the alignment check answers first.
    expect(map(proc, fd, ioas, buf, MOCK_PAGE, APERTURE + 1024n).rc).toBe(-EINVAL);
    // Misaligned and wrapping: still EINVAL, not EOVERFLOW.
    expect(map(proc, fd, ioas, buf, 2n * MOCK_PAGE, U64_MAX - 1024n).rc).toBe(-EINVAL);
    // 2048-aligned is enough for the mock domain.
    expect(map(proc, fd, ioas, buf, MOCK_PAGE, APERTURE + 3n * MOCK_PAGE + 2n * PAGE).rc).toBe(0);
    expect(
      checkMap(proc, fd, hwpts[0] as number, APERTURE + 2n * PAGE + 3n * MOCK_PAGE, MOCK_PAGE, buf),
    ).toBe(0);
    expect(areasOf(proc, fd, ioas)).toEqual([
      [APERTURE, APERTURE + 2n * PAGE - 1n],
      [APERTURE + 2n * PAGE + 3n * MOCK_PAGE, APERTURE + 2n * PAGE + 4n * MOCK_PAGE - 1n],
    ]);
    // Without a domain the alignment is 1: any byte address is a valid FIXED iova.
    const bare = ioasAlloc(proc, fd);
    expect(map(proc, fd, bare, buf, PAGE, 1n).rc).toBe(0);
    expect(map(proc, fd, bare, buf, 3n, PAGE + 7n).rc).toBe(0);
    expect(areasOf(proc, fd, bare)).toEqual([
      [1n, PAGE],
      [PAGE + 7n, PAGE + 9n],
    ]);
    closeAndCheck(host, proc, fd);
  });

  it('51: FIXED iova + length − 1 wraps → EOVERFLOW (before the reserved-range check)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 4n * PAGE);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, TWO64 - PAGE).rc).toBe(-EOVERFLOW);
    expect(map(proc, fd, ioas, buf, 3n, U64_MAX - 1n).rc).toBe(-EOVERFLOW);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // Ending exactly at 2^64 − 1 is fine.
    expect(map(proc, fd, ioas, buf, PAGE, TWO64 - PAGE).rc).toBe(0);
    // With a domain the top of the space is reserved, but the overflow is found first.
    const dom = env(1);
    const dbuf = buffer(dom.proc, 4n * PAGE);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf, 2n * PAGE, TWO64 - MOCK_PAGE).rc).toBe(-EOVERFLOW);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf, MOCK_PAGE, TWO64 - MOCK_PAGE).rc).toBe(-EINVAL);
    expect(areasOf(dom.proc, dom.fd, dom.ioas)).toEqual([]);
    closeAndCheck(dom.host, dom.proc, dom.fd);
    closeAndCheck(host, proc, fd);
  });

  it('52: FIXED range touching a reserved range → EINVAL (checked before EEXIST)', () => {
    const { host, proc, fd, ioas } = env(1);
    const buf = buffer(proc, 4n * PAGE);
    // The mock aperture is [16 MiB, 2 GiB − 1]; both sides are reserved.
    expect(map(proc, fd, ioas, buf, 2n * PAGE, APERTURE - PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, APERTURE_LAST + 1n - PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buf, PAGE, APERTURE - PAGE).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(host.pinnedPages()).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, APERTURE_LAST + 1n - PAGE).rc).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, APERTURE).rc).toBe(0);

    // A test reservation on an IOAS without a domain.
    const bare = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, bare, 4n * PAGE, 100n * PAGE)).toBe(0);
    expect(map(proc, fd, bare, buf, 2n * PAGE, 3n * PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, bare, buf, 1n, 4n * PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, bare, buf, 2n * PAGE, 103n * PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, bare, buf, 2n * PAGE, 2n * PAGE).rc).toBe(0);
    expect(map(proc, fd, bare, buf, PAGE, 104n * PAGE).rc).toBe(0);
    // Touching both the reservation and an area: the reservation answers.
    expect(map(proc, fd, bare, buf, 2n * PAGE, 103n * PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, bare, buf, PAGE, 104n * PAGE).rc).toBe(-EEXIST);
    expect(areasOf(proc, fd, bare)).toEqual([
      [2n * PAGE, 4n * PAGE - 1n],
      [104n * PAGE, 105n * PAGE - 1n],
    ]);
    closeAndCheck(host, proc, fd);
  });

  it('53: FIXED map overlapping an area, even partly → EEXIST (the 5 cases of iommufd_ioas/area)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, 4n * PAGE);
      const base = APERTURE;
      expect(map(proc, fd, ioas, buf, 2n * PAGE, base + 16n * PAGE).rc).toBe(0);
      const cases: [bigint, bigint][] = [
        [2n * PAGE, 16n * PAGE],
        [PAGE, 16n * PAGE],
        [PAGE, 17n * PAGE],
        [2n * PAGE, 15n * PAGE],
        [3n * PAGE, 15n * PAGE],
      ];
      for (const [length, at] of cases) {
        expect(map(proc, fd, ioas, buf, length, base + at).rc).toBe(-EEXIST);
      }
      // The area is untouched; with a domain its pages are still pinned exactly once.
      expect(areasOf(proc, fd, ioas)).toEqual([[base + 16n * PAGE, base + 18n * PAGE - 1n]]);
      if (domains === 1) {
        expect(checkRefs(proc, fd, buf, 2n * PAGE, 1)).toBe(0);
        expect(checkMap(proc, fd, hwpts[0] as number, base + 16n * PAGE, 2n * PAGE, buf)).toBe(0);
      }
      // Right next to it on either side is free.
      expect(map(proc, fd, ioas, buf, PAGE, base + 15n * PAGE).rc).toBe(0);
      expect(map(proc, fd, ioas, buf, PAGE, base + 18n * PAGE).rc).toBe(0);
      expect(areasOf(proc, fd, ioas)).toHaveLength(3);
      closeAndCheck(host, proc, fd);
    }
  });

  it('54: VA sub-page offset not aligned to iova_alignment → EINVAL (HUGE_PAGES=0 with VA+2048; mock domain with VA+1024)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 4n * PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, APERTURE).rc).toBe(0);
    expect(option(proc, fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n).rc).toBe(0);
    expect(map(proc, fd, ioas, buf + MOCK_PAGE, PAGE, APERTURE + PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buf + MOCK_PAGE, PAGE).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, ioas)).toEqual([[APERTURE, APERTURE + PAGE - 1n]]);
    // Page-aligned VAs still map.
    expect(map(proc, fd, ioas, buf + PAGE, PAGE, APERTURE + PAGE).rc).toBe(0);

    const dom = env(1);
    const dbuf = buffer(dom.proc, 4n * PAGE);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf + 1024n, MOCK_PAGE, APERTURE).rc).toBe(-EINVAL);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf + 1024n, MOCK_PAGE).rc).toBe(-EINVAL);
    expect(areasOf(dom.proc, dom.fd, dom.ioas)).toEqual([]);
    expect(dom.host.pinnedPages()).toBe(0);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf + MOCK_PAGE, MOCK_PAGE, APERTURE).rc).toBe(0);
    expect(
      checkMap(dom.proc, dom.fd, dom.hwpts[0] as number, APERTURE, MOCK_PAGE, dbuf + MOCK_PAGE),
    ).toBe(0);
    closeAndCheck(dom.host, dom.proc, dom.fd);
    closeAndCheck(host, proc, fd);
  });
});

describe('2.6 IOMMU_IOAS_MAP: automatic IOVA', () => {
  it('55: automatic IOVAs keep the natural alignment, avoid reserved ranges and stay inside the allowed range (iommufd_ioas/area_auto_iova)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas } = env(domains);
      const buf = hugeAlignedBuffer(proc);
      const lowest = domains === 1 ? APERTURE : PAGE;

      // Simple 4k pages: first fit from the bottom of the searchable space.
      const iovas: bigint[] = [];
      for (let i = 0; i < 10; i++) {
        const r = map(proc, fd, ioas, buf, PAGE);
        expect(r.rc).toBe(0);
        iovas.push(r.iova);
      }
      expect(iovas).toEqual(Array.from({ length: 10 }, (_, i) => lowest + BigInt(i) * PAGE));
      for (const iova of iovas) expect(unmap(proc, fd, ioas, iova, PAGE).rc).toBe(0);

      // Lengths of 1..10 pages: aligned to roundup_pow_of_two(length) (the
      // selftest checks the lowest set bit of the length, which this implies).
      // Without a domain the VA need not exist: 2^31 is used as the selftest does.
      const src = domains === 1 ? buf : 1n << 31n;
      const got: [bigint, bigint][] = [];
      for (let i = 1n; i <= 10n; i++) {
        const length = PAGE * i;
        const r = map(proc, fd, ioas, src, length);
        expect(r.rc).toBe(0);
        expect(r.iova % autoAlignment(length, src)).toBe(0n);
        expect(r.iova % (length & -length)).toBe(0n);
        got.push([r.iova, r.iova + length - 1n]);
      }
      expectDisjoint(got);
      for (const [iova, last] of got)
        expect(unmap(proc, fd, ioas, iova, last - iova + 1n).rc).toBe(0);

      // Avoids a reserved region.
      const resStart = 4n * PAGE;
      const resLast = resStart + 100n * PAGE - 1n;
      expect(addReserved(proc, fd, ioas, resStart, 100n * PAGE)).toBe(0);
      got.length = 0;
      for (let i = 1n; i <= 10n; i++) {
        const length = PAGE * i;
        const r = map(proc, fd, ioas, buf, length);
        expect(r.rc).toBe(0);
        expect(r.iova % autoAlignment(length, buf)).toBe(0n);
        const last = r.iova + length - 1n;
        expect(last < resStart || r.iova > resLast).toBe(true);
        got.push([r.iova, last]);
      }
      expectDisjoint(got);
      for (const [iova, last] of got)
        expect(unmap(proc, fd, ioas, iova, last - iova + 1n).rc).toBe(0);

      // An allowed range that intersects the reservation is refused.
      expect(allowIovas(proc, fd, ioas, [{ start: PAGE, last: 600n * PAGE }])).toBe(-EADDRINUSE);
      // Allocation from an allowed range: every mapping lies wholly inside it.
      const allowed =
        domains === 1
          ? { start: APERTURE + PAGE, last: APERTURE + 600n * PAGE - 1n }
          : { start: 200n * PAGE, last: 600n * PAGE - 1n };
      expect(allowIovas(proc, fd, ioas, [allowed])).toBe(0);
      got.length = 0;
      for (let i = 1n; i <= 10n; i++) {
        const length = PAGE * i;
        const r = map(proc, fd, ioas, buf, length);
        expect(r.rc).toBe(0);
        expect(r.iova % autoAlignment(length, buf)).toBe(0n);
        expect(r.iova).toBeGreaterThanOrEqual(allowed.start);
        expect(r.iova + length - 1n).toBeLessThanOrEqual(allowed.last);
        got.push([r.iova, r.iova + length - 1n]);
      }
      expectDisjoint(got);
      expect(areasOf(proc, fd, ioas)).toHaveLength(10);
      closeAndCheck(host, proc, fd);
    }
  });

  it('55: the VA decides the alignment (its lowest set bit) and the IOVA keeps its sub-page offset', () => {
    const { host, proc, fd } = env(0);
    const buf = hugeAlignedBuffer(proc);
    // 8 pages from a 2 MiB aligned VA: aligned to 32 KiB, so the first fit is 32 KiB.
    const a = ioasAlloc(proc, fd);
    expect(map(proc, fd, a, buf, 8n * PAGE)).toEqual({ rc: 0, iova: 8n * PAGE });
    // The same length from VA + 4 KiB: aligned to 4 KiB only, so it fits at PAGE.
    const b = ioasAlloc(proc, fd);
    expect(map(proc, fd, b, buf + PAGE, 8n * PAGE)).toEqual({ rc: 0, iova: PAGE });
    // A VA 100 bytes into a page: alignment 4, and the IOVA carries the 100.
    const c = ioasAlloc(proc, fd);
    expect(map(proc, fd, c, buf + 100n, 1000n)).toEqual({ rc: 0, iova: PAGE + 100n });
    // Lengths above 2 MiB are still aligned only to 2 MiB.
    const d = ioasAlloc(proc, fd);
    expect(map(proc, fd, d, 1n << 40n, 4n * HPAGE)).toEqual({ rc: 0, iova: HPAGE });
    closeAndCheck(host, proc, fd);
  });

  it('56: no hole big enough → ENOSPC; a hole that would need an address past 2^64 is skipped (iommufd_ioas/reserved_overflow)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = hugeAlignedBuffer(proc);
    expect(addReserved(proc, fd, ioas, 6n, 0xffffffffffff8001n)).toBe(0);
    // 0x5000 bytes from a 2 MiB aligned VA need 32 KiB alignment: the only
    // hole, [0xffffffffffff8007, 2^64 − 1 − PAGE], would round up past 2^64.
    const r = map(proc, fd, ioas, buf, 0x5000n);
    expect(r.rc).toBe(-ENOSPC);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    // From VA + PAGE only 4 KiB alignment is needed, and the same hole fits.
    expect(map(proc, fd, ioas, buf + PAGE, 0x5000n)).toEqual({ rc: 0, iova: 0xffffffffffff9000n });
    // What is left is one page above it and less than a page below it.
    expect(map(proc, fd, ioas, buf + PAGE, 2n * PAGE).rc).toBe(-ENOSPC);
    expect(map(proc, fd, ioas, buf + PAGE, PAGE)).toEqual({ rc: 0, iova: 0xffffffffffffe000n });
    expect(map(proc, fd, ioas, buf + PAGE, PAGE).rc).toBe(-ENOSPC);
    closeAndCheck(host, proc, fd);
  });

  it('57: an automatic IOVA is never 0 and never in the last page', () => {
    const { host, proc, fd } = env(0);
    const buf = buffer(proc, PAGE);
    // Only [0, PAGE − 1] free.
    const low = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, low, PAGE, TWO64 - PAGE)).toBe(0);
    expect(map(proc, fd, low, buf, PAGE).rc).toBe(-ENOSPC);
    expect(map(proc, fd, low, buf, 1n).rc).toBe(-ENOSPC);
    expect(map(proc, fd, low, buf, PAGE, 0n).rc).toBe(0);
    // Only the last page free.
    const high = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, high, 0n, TWO64 - PAGE)).toBe(0);
    expect(map(proc, fd, high, buf, PAGE).rc).toBe(-ENOSPC);
    expect(map(proc, fd, high, buf, 1n).rc).toBe(-ENOSPC);
    expect(map(proc, fd, high, buf, PAGE, TWO64 - PAGE).rc).toBe(0);
    // The last two pages free: the page below the last one is handed out.
    const two = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, two, 0n, TWO64 - 2n * PAGE)).toBe(0);
    expect(map(proc, fd, two, buf, PAGE)).toEqual({ rc: 0, iova: TWO64 - 2n * PAGE });
    expect(areasOf(proc, fd, low)).toEqual([[0n, PAGE - 1n]]);
    expect(areasOf(proc, fd, high)).toEqual([[TWO64 - PAGE, U64_MAX]]);
    closeAndCheck(host, proc, fd);
  });

  it('58: without a domain or access the VA is not touched: user_va = 2^31 maps and pins nothing', () => {
    const { host, proc, fd, ioas } = env(0);
    const va = 1n << 31n;
    expect(proc.readMemory(va, 1)).toBeNull(); // not mapped in the process
    const r = map(proc, fd, ioas, va, 10n * PAGE);
    expect(r.rc).toBe(0);
    expect(areasOf(proc, fd, ioas)).toEqual([[r.iova, r.iova + 10n * PAGE - 1n]]);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.status().pinnedBytes).toBe(0n);
    expect(unmap(proc, fd, ioas, r.iova, 10n * PAGE)).toEqual({ rc: 0, length: 10n * PAGE });
    // The same map with a domain has to pin, and fails.
    const dom = env(1);
    expect(map(dom.proc, dom.fd, dom.ioas, va, 10n * PAGE).rc).toBe(-EFAULT);
    expect(areasOf(dom.proc, dom.fd, dom.ioas)).toEqual([]);
    closeAndCheck(dom.host, dom.proc, dom.fd);
    closeAndCheck(host, proc, fd);
  });
});

describe('2.6 IOMMU_IOAS_MAP: pinning with domains', () => {
  it('59: with a domain, half of the VA range unmapped (second half, then first half) → EFAULT and nothing mapped or pinned', () => {
    for (const domains of [1, 2] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const size = 8n * PAGE;
      const buf = buffer(proc, size);
      expect(proc.munmap(buf + size / 2n, size / 2n)).toBe(0);
      expect(map(proc, fd, ioas, buf, size).rc).toBe(-EFAULT);
      expect(map(proc, fd, ioas, buf, size, APERTURE).rc).toBe(-EFAULT);
      expect(areasOf(proc, fd, ioas)).toEqual([]);
      expect(checkRefs(proc, fd, buf, size / 2n, 0)).toBe(0);
      expect(host.pinnedPages()).toBe(0);
      expect(proc.status().pinnedBytes).toBe(0n);
      // The IOVA was released: mapping the valid half there works.
      expect(map(proc, fd, ioas, buf, size / 2n, APERTURE).rc).toBe(0);
      for (const h of hwpts) expect(checkMap(proc, fd, h, APERTURE, size / 2n, buf)).toBe(0);
      expect(unmap(proc, fd, ioas, APERTURE, size / 2n).rc).toBe(0);
      expect(proc.munmap(buf, size / 2n)).toBe(0);
      expect(map(proc, fd, ioas, buf, size).rc).toBe(-EFAULT);
      expect(areasOf(proc, fd, ioas)).toEqual([]);
      expect(host.pinnedPages()).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  for (const domains of [1, 2] as const) {
    for (const file of [false, true]) {
      const what = `${domains} domain${domains === 2 ? 's' : ''}${file ? ', memfd (70)' : ''}`;
      it(`60+61: every 2048-multiple start and length in an 8-page buffer maps, checks and pins each page once, unmap unpins (all_aligns, ${what})`, () => {
        const { host, proc, fd, ioas, hwpts } = env(domains);
        const size = 8n * PAGE;
        const mem = file ? memfdBuffer(proc, size) : { mfd: -1, va: buffer(proc, size) };
        const buf = mem.va;
        expect(checkRefs(proc, fd, buf, size, 0)).toBe(0);
        let cases = 0;
        for (let start = 0n; start < size; start += MOCK_PAGE) {
          for (let end = start + MOCK_PAGE; end < size; end += MOCK_PAGE) {
            const length = end - start;
            const r = file
              ? mapFile(proc, fd, ioas, mem.mfd, start, length)
              : map(proc, fd, ioas, buf + start, length);
            expect(r.rc).toBe(0);
            for (const h of hwpts)
              expect(checkMap(proc, fd, h, r.iova, length, buf + start)).toBe(0);
            // Whole pages are pinned: the ones the range touches once, the others not at all.
            const first = (start / PAGE) * PAGE;
            const past = ((end + PAGE - 1n) / PAGE) * PAGE;
            expectRefs(proc, fd, buf, 0n, first, 0);
            expectRefs(proc, fd, buf, first, past, 1);
            expectRefs(proc, fd, buf, past, size, 0);
            expect(unmap(proc, fd, ioas, r.iova, length)).toEqual({ rc: 0, length });
            cases++;
          }
        }
        expect(cases).toBe(120);
        expect(checkRefs(proc, fd, buf, size, 0)).toBe(0);
        expect(proc.status().pinnedBytes).toBe(0n);
        closeAndCheck(host, proc, fd);
      });
    }
  }

  it('70: memfd maps take part in all_aligns_copy: a domain added and removed while the area exists is filled, refs stay 1', () => {
    for (const file of [false, true]) {
      const { host, proc, fd, ioas } = env(1);
      const size = 8n * PAGE;
      const mem = file ? memfdBuffer(proc, size) : { mfd: -1, va: buffer(proc, size) };
      const buf = mem.va;
      for (let start = 0n; start < size; start += 2n * MOCK_PAGE) {
        for (let end = start + MOCK_PAGE; end < size; end += 3n * MOCK_PAGE) {
          const length = end - start;
          const r = file
            ? mapFile(proc, fd, ioas, mem.mfd, start, length)
            : map(proc, fd, ioas, buf + start, length);
          expect(r.rc).toBe(0);
          const md = mockDomain(proc, fd, ioas);
          expect(md.rc).toBe(0);
          expect(checkMap(proc, fd, md.hwptId, r.iova, length, buf + start)).toBe(0);
          const first = (start / PAGE) * PAGE;
          const past = ((end + PAGE - 1n) / PAGE) * PAGE;
          expectRefs(proc, fd, buf, first, past, 1);
          expect(destroy(proc, fd, md.stdevId)).toBe(0);
          expectRefs(proc, fd, buf, first, past, 1);
          expect(unmap(proc, fd, ioas, r.iova, length).rc).toBe(0);
        }
      }
      expect(checkRefs(proc, fd, buf, size, 0)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('62 (no copy-on-write in the model): a READABLE map of a read-only mapping pins it and maps the CPU page; WRITEABLE needs a writable mapping', () => {
    const { host, proc, fd, ioas, hwpts } = env(1);
    const { mfd, va: rw } = memfdBuffer(proc, PAGE);
    const ro = proc.mmap(PAGE, { fd: mfd, readOnly: true });
    expect(ro).toBeGreaterThan(0n);
    const r = map(proc, fd, ioas, ro, PAGE, undefined, R);
    expect(r.rc).toBe(0);
    expect(checkMap(proc, fd, hwpts[0] as number, r.iova, PAGE, ro)).toBe(0);
    // A CPU write (through the writable mapping of the same page) changes no PFN.
    expect(proc.writeMemory(rw, new Uint8Array(PAGE_N).fill(1))).toBe(0);
    expect(checkMap(proc, fd, hwpts[0] as number, r.iova, PAGE, ro)).toBe(0);
    // Write permission on a read-only VMA cannot be pinned.
    expect(map(proc, fd, ioas, ro, PAGE).rc).toBe(-EFAULT);
    expect(map(proc, fd, ioas, ro, PAGE, undefined, W).rc).toBe(-EFAULT);
    expect(areasOf(proc, fd, ioas)).toEqual([[r.iova, r.iova + PAGE - 1n]]);
    expect(checkRefs(proc, fd, ro, PAGE, 1)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('63: ten FIXED maps and close without unmapping → clean teardown (iommufd_ioas/ioas_area_auto_destroy)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas } = env(domains);
      const buf = buffer(proc, PAGE);
      for (let i = 0n; i < 10n; i++) {
        expect(map(proc, fd, ioas, buf, PAGE, APERTURE + i * PAGE).rc).toBe(0);
      }
      expect(areasOf(proc, fd, ioas)).toHaveLength(10);
      // Each MAP pins the page on its own: ten pins of one page with a domain.
      expect(checkRefs(proc, fd, buf, PAGE, domains === 1 ? 10 : 0)).toBe(0);
      closeAndCheck(host, proc, fd);
      const fd2 = proc.open('/dev/iommu');
      expect(checkRefs(proc, fd2, buf, PAGE, 0)).toBe(0);
      expect(proc.status().pinnedBytes).toBe(0n);
      closeAndCheck(host, proc, fd2);
    }
  });
});

describe('2.6 IOMMU_IOAS_MAP: locked-memory limit and output', () => {
  const LIMIT = 4n * PAGE;

  it('64: USER mode (the default): pins over RLIMIT_MEMLOCK of an unprivileged process → ENOMEM, rolled back; the limit is per user', () => {
    const { host, proc, fd: rootFd } = env(0);
    closeAndCheck(host, proc, rootFd);
    const a = host.createProcess({ privileged: false, memlockLimitBytes: LIMIT });
    const fd = a.open('/dev/iommu');
    const ioas = ioasAlloc(a, fd);
    expect(mockDomain(a, fd, ioas).rc).toBe(0);
    const buf = buffer(a, 8n * PAGE);
    expect(map(a, fd, ioas, buf, 8n * PAGE).rc).toBe(-ENOMEM);
    expect(map(a, fd, ioas, buf, 5n * PAGE, APERTURE).rc).toBe(-ENOMEM);
    expect(areasOf(a, fd, ioas)).toEqual([]);
    expect(checkRefs(a, fd, buf, 8n * PAGE, 0)).toBe(0);
    expect(a.status()).toMatchObject({ userLockedBytes: 0n, pinnedBytes: 0n, lockedBytes: 0n });
    expect(host.pinnedPages()).toBe(0);
    // Up to the limit works, and is charged to the user.
    const ok = map(a, fd, ioas, buf, 4n * PAGE);
    expect(ok.rc).toBe(0);
    expect(a.status()).toMatchObject({
      userLockedBytes: LIMIT,
      pinnedBytes: LIMIT,
      lockedBytes: 0n,
    });
    expect(map(a, fd, ioas, buf + 4n * PAGE, PAGE).rc).toBe(-ENOMEM);
    expect(areasOf(a, fd, ioas)).toHaveLength(1);
    expect(checkRefs(a, fd, buf + 4n * PAGE, 4n * PAGE, 0)).toBe(0);
    // Another process of the same user shares the count.
    const b = host.createProcess({ privileged: false, memlockLimitBytes: LIMIT, uid: a.uid });
    const fdB = b.open('/dev/iommu');
    const ioasB = ioasAlloc(b, fdB);
    expect(mockDomain(b, fdB, ioasB).rc).toBe(0);
    const bufB = buffer(b, PAGE);
    expect(map(b, fdB, ioasB, bufB, PAGE).rc).toBe(-ENOMEM);
    // Unmapping uncharges.
    expect(unmap(a, fd, ioas, ok.iova, 4n * PAGE).rc).toBe(0);
    expect(a.status()).toMatchObject({ userLockedBytes: 0n, pinnedBytes: 0n });
    expect(map(b, fdB, ioasB, bufB, PAGE).rc).toBe(0);
    expect(b.status()).toMatchObject({ userLockedBytes: PAGE, pinnedBytes: PAGE });
    closeAndCheck(host, b, fdB);
    closeAndCheck(host, a, fd);
    expect(a.status().userLockedBytes).toBe(0n);
    // With CAP_IPC_LOCK nothing is charged against the limit.
    const root = host.createProcess({ memlockLimitBytes: PAGE });
    const rfd = root.open('/dev/iommu');
    const rioas = ioasAlloc(root, rfd);
    expect(mockDomain(root, rfd, rioas).rc).toBe(0);
    const rbuf = buffer(root, 8n * PAGE);
    expect(map(root, rfd, rioas, rbuf, 8n * PAGE).rc).toBe(0);
    expect(root.status()).toMatchObject({ userLockedBytes: 0n, pinnedBytes: 8n * PAGE });
    closeAndCheck(host, root, rfd);
  });

  it('64: MM mode (RLIMIT_MODE 1, set by root): pins over the process limit → ENOMEM, rolled back; the limit is per process', () => {
    const { host, proc: root, fd: first } = env(0);
    closeAndCheck(host, root, first);
    const rootFd = root.open('/dev/iommu');
    expect(option(root, rootFd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n).rc).toBe(0);
    const a = host.createProcess({ privileged: false, memlockLimitBytes: LIMIT });
    const fd = passFd(root, rootFd, a);
    expect(root.close(rootFd)).toBe(0);
    // The unprivileged process cannot switch it back.
    expect(option(a, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 0n).rc).toBe(-EPERM);
    const ioas = ioasAlloc(a, fd);
    expect(mockDomain(a, fd, ioas).rc).toBe(0);
    const buf = buffer(a, 8n * PAGE);
    expect(map(a, fd, ioas, buf, 8n * PAGE).rc).toBe(-ENOMEM);
    expect(areasOf(a, fd, ioas)).toEqual([]);
    expect(checkRefs(a, fd, buf, 8n * PAGE, 0)).toBe(0);
    expect(a.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n, userLockedBytes: 0n });
    expect(map(a, fd, ioas, buf, 4n * PAGE, APERTURE).rc).toBe(0);
    // Charged to the process (VmLck), not to the user.
    expect(a.status()).toMatchObject({
      lockedBytes: LIMIT,
      pinnedBytes: LIMIT,
      userLockedBytes: 0n,
    });
    expect(map(a, fd, ioas, buf + 4n * PAGE, PAGE).rc).toBe(-ENOMEM);
    expect(areasOf(a, fd, ioas)).toHaveLength(1);
    // Another process of the same user has its own budget.
    const b = host.createProcess({ privileged: false, memlockLimitBytes: LIMIT, uid: a.uid });
    const fdB = passFd(a, fd, b);
    const bufB = buffer(b, 4n * PAGE);
    expect(map(b, fdB, ioas, bufB, 4n * PAGE).rc).toBe(0);
    expect(b.status()).toMatchObject({ lockedBytes: LIMIT, pinnedBytes: LIMIT });
    expect(unmap(a, fd, ioas, APERTURE, 4n * PAGE).rc).toBe(0);
    expect(a.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n });
    expect(b.close(fdB)).toBe(0);
    closeAndCheck(host, a, fd);
    expect(b.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n });
  });

  it('64: MM mode set by root without CAP_IPC_LOCK (drop_cap_ipc_lock): its own pins over the limit → ENOMEM, rolled back', () => {
    const { host, proc: first, fd: firstFd } = env(0);
    closeAndCheck(host, first, firstFd);
    const proc = host.createProcess({ ipcLock: false, memlockLimitBytes: LIMIT });
    const fd = proc.open('/dev/iommu');
    expect(option(proc, fd, IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n).rc).toBe(0);
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    const buf = buffer(proc, 8n * PAGE);
    expect(map(proc, fd, ioas, buf, 5n * PAGE).rc).toBe(-ENOMEM);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(checkRefs(proc, fd, buf, 8n * PAGE, 0)).toBe(0);
    expect(proc.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n, userLockedBytes: 0n });
    expect(map(proc, fd, ioas, buf, 4n * PAGE).rc).toBe(0);
    expect(proc.status()).toMatchObject({
      lockedBytes: LIMIT,
      pinnedBytes: LIMIT,
      userLockedBytes: 0n,
    });
    closeAndCheck(host, proc, fd);
    expect(proc.status()).toMatchObject({ lockedBytes: 0n, pinnedBytes: 0n });
  });

  it('65: the out iova is written only on success (Uint8Array and process-memory arguments)', () => {
    const { host, proc, fd, ioas } = env(1);
    const sentinel = 0x5a5a000n;
    const buf = buffer(proc, 2n * PAGE);
    expect(proc.munmap(buf + PAGE, PAGE)).toBe(0);
    // EFAULT while pinning.
    const failed = mapRaw(proc, fd, {
      flags: RW,
      ioas_id: ioas,
      user_va: buf,
      length: 2n * PAGE,
      iova: sentinel,
    });
    expect(failed.rc).toBe(-EFAULT);
    expect(failed.out.iova).toBe(sentinel);
    // ENOSPC: no hole of 4 GiB inside the 2 GiB aperture.
    const nospc = mapRaw(proc, fd, {
      flags: RW,
      ioas_id: ioas,
      user_va: 1n << 40n,
      length: 1n << 32n,
      iova: sentinel,
    });
    expect(nospc.rc).toBe(-ENOSPC);
    expect(nospc.out.iova).toBe(sentinel);
    // Through process memory.
    const arg = buffer(proc, PAGE);
    const bytes = structs.iommu_ioas_map.encode({
      size: 40,
      flags: RW,
      ioas_id: ioas,
      user_va: buf,
      length: 2n * PAGE,
      iova: sentinel,
    });
    expect(proc.writeMemory(arg, bytes)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_MAP, arg)).toBe(-EFAULT);
    expect(proc.readMemory(arg, 40)).toEqual(bytes);
    // Success writes the chosen IOVA and nothing else.
    const good = structs.iommu_ioas_map.encode({
      size: 40,
      flags: RW,
      ioas_id: ioas,
      user_va: buf,
      length: PAGE,
      iova: sentinel,
    });
    expect(proc.writeMemory(arg, good)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_MAP, arg)).toBe(0);
    const back = structs.iommu_ioas_map.decode(proc.readMemory(arg, 40) as Uint8Array);
    expect(back).toEqual({ ...structs.iommu_ioas_map.decode(good), iova: APERTURE });
    expect(areasOf(proc, fd, ioas)).toEqual([[APERTURE, APERTURE + PAGE - 1n]]);
    closeAndCheck(host, proc, fd);
  });
});

describe('2.7 IOMMU_IOAS_MAP_FILE', () => {
  it('66: the same flag, R/W and overflow checks as MAP → EOPNOTSUPP / EINVAL / EOVERFLOW, in that order', () => {
    const { host, proc, fd, ioas } = env(0);
    const { mfd } = memfdBuffer(proc, 4n * PAGE);
    const ok = { ioas_id: ioas, fd: mfd, start: 0n, length: PAGE };
    for (const bad of [1 << 3, (1 << 31) >>> 0]) {
      expect(mapFileRaw(proc, fd, { ...ok, flags: (RW | bad) >>> 0 }).rc).toBe(-EOPNOTSUPP);
    }
    expect(mapFileRaw(proc, fd, { ...ok, flags: 1 << 5, length: U64_MAX }).rc).toBe(-EOPNOTSUPP);
    expect(mapFileRaw(proc, fd, { ...ok, flags: 0 }).rc).toBe(-EINVAL);
    expect(mapFileRaw(proc, fd, { ...ok, flags: FIXED }).rc).toBe(-EINVAL);
    expect(mapFileRaw(proc, fd, { ...ok, flags: RW, iova: U64_MAX }).rc).toBe(-EOVERFLOW);
    expect(mapFileRaw(proc, fd, { ...ok, flags: RW, length: U64_MAX }).rc).toBe(-EOVERFLOW);
    expect(mapFileRaw(proc, fd, { ...ok, flags: 0, length: U64_MAX }).rc).toBe(-EOVERFLOW);
    // R/W before the IOAS lookup, which comes before the fd.
    expect(mapFileRaw(proc, fd, { ...ok, flags: 0, ioas_id: 999 }).rc).toBe(-EINVAL);
    expect(mapFileRaw(proc, fd, { ...ok, flags: RW, ioas_id: 999, fd: 999 }).rc).toBe(-ENOENT);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(mapFileRaw(proc, fd, { ...ok, flags: R }).rc).toBe(0);
    expect(areasOf(proc, fd, ioas)).toHaveLength(1);
    closeAndCheck(host, proc, fd);
  });

  it('67: length 0 → EINVAL; start + length − 1 wraps → EOVERFLOW; bad fd → EBADF', () => {
    const { host, proc, fd, ioas } = env(0);
    const { mfd } = memfdBuffer(proc, 4n * PAGE);
    expect(mapFile(proc, fd, ioas, mfd, 0n, 0n).rc).toBe(-EINVAL);
    expect(mapFile(proc, fd, ioas, mfd, PAGE, 0n, 0n).rc).toBe(-EINVAL);
    expect(mapFile(proc, fd, ioas, mfd, TWO64 - PAGE, 2n * PAGE).rc).toBe(-EOVERFLOW);
    // The wrap is found before the length limit.
    expect(mapFile(proc, fd, ioas, mfd, PAGE, U64_MAX - 1n).rc).toBe(-EOVERFLOW);
    expect(mapFile(proc, fd, ioas, 999, 0n, PAGE).rc).toBe(-EBADF);
    expect(mapFile(proc, fd, ioas, -1, 0n, PAGE).rc).toBe(-EBADF);
    // The fd is looked up before the length is checked.
    expect(mapFile(proc, fd, ioas, 999, 0n, 0n).rc).toBe(-EBADF);
    const closed = proc.memfdCreate('gone', PAGE);
    expect(proc.close(closed)).toBe(0);
    expect(mapFile(proc, fd, ioas, closed, 0n, PAGE).rc).toBe(-EBADF);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });

  it('68: a one-page memfd map: the domain maps the memfd pages (iommufd_mock_domain/basic, file)', () => {
    for (const domains of [1, 2] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const { mfd, va } = memfdBuffer(proc, 4n * PAGE);
      const r = mapFile(proc, fd, ioas, mfd, 0n, PAGE);
      expect(r).toEqual({ rc: 0, iova: APERTURE });
      for (const h of hwpts) expect(checkMap(proc, fd, h, r.iova, PAGE, va)).toBe(0);
      // A different page of the file is not what is mapped.
      for (const h of hwpts) expect(checkMap(proc, fd, h, r.iova, PAGE, va + PAGE)).toBe(-EINVAL);
      expect(checkRefs(proc, fd, va, PAGE, 1)).toBe(0);
      // FIXED at an offset of the file.
      expect(mapFile(proc, fd, ioas, mfd, 2n * PAGE, PAGE, APERTURE + 16n * PAGE).rc).toBe(0);
      for (const h of hwpts)
        expect(checkMap(proc, fd, h, APERTURE + 16n * PAGE, PAGE, va + 2n * PAGE)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('69: a memfd range past the end of the file (size + 1, or after ftruncate to 0) with a domain → EINVAL', () => {
    const { host, proc, fd, ioas } = env(1);
    const size = 8n * PAGE;
    const { mfd } = memfdBuffer(proc, size);
    expect(mapFile(proc, fd, ioas, mfd, 0n, size + 1n).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.ftruncate(mfd, 0)).toBe(0);
    expect(mapFile(proc, fd, ioas, mfd, 0n, size).rc).toBe(-EINVAL);
    expect(mapFile(proc, fd, ioas, mfd, 0n, PAGE).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(host.pinnedPages()).toBe(0);
    // Grown back, it maps.
    expect(proc.ftruncate(mfd, size)).toBe(0);
    expect(mapFile(proc, fd, ioas, mfd, 0n, size).rc).toBe(0);
    closeAndCheck(host, proc, fd);
  });
});
