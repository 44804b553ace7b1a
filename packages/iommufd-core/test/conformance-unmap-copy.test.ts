/**
 * Conformance of IOMMU_IOAS_UNMAP and IOMMU_IOAS_COPY with Linux 6.17
 * (kernel-semantics catalog 2.8, items 73–84, and 2.9, items 85–94),
 * driven through the syscall surface with real struct bytes. Expectations
 * come from ioas.c / io_pagetable.c and the selftests iommufd_ioas/area,
 * unmap_fully_contained_areas, access_pin_unmap, copy_area, copy_sweep and
 * iommufd_mock_domain/user_copy.
 */
import {
  EADDRINUSE,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  addReserved,
  checkMap,
  checkRefs,
  copy,
  destroy,
  FIXED,
  ioasAlloc,
  map,
  mockDomain,
  PAGE,
  RW,
  U64_MAX,
  unmap,
} from './helpers.js';
import {
  APERTURE,
  accessPages,
  areasOf,
  buffer,
  closeAndCheck,
  copyRaw,
  createAccess,
  destroyAccessPages,
  env,
  hugeAlignedBuffer,
  MOCK_PAGE,
  mapFile,
  memfdBuffer,
} from './helpers-b.js';

const R = IOMMU_IOAS_MAP_READABLE;
const W = IOMMU_IOAS_MAP_WRITEABLE;
const TWO64 = 1n << 64n;
const PIN = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;

describe('2.8 IOMMU_IOAS_UNMAP', () => {
  it('73: unmapping [i·PAGE, +PAGE) with nothing mapped → ENOENT, and length is not written (84)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas } = env(domains);
      for (let i = 0n; i < 10n; i++) {
        expect(unmap(proc, fd, ioas, i * PAGE, PAGE)).toEqual({ rc: -ENOENT, length: PAGE });
      }
      // Nothing mapped inside the range, with areas elsewhere: still ENOENT.
      const buf = buffer(proc, PAGE);
      expect(map(proc, fd, ioas, buf, PAGE, APERTURE + 16n * PAGE).rc).toBe(0);
      expect(unmap(proc, fd, ioas, APERTURE, 16n * PAGE).rc).toBe(-ENOENT);
      expect(unmap(proc, fd, ioas, APERTURE + 17n * PAGE, PAGE).rc).toBe(-ENOENT);
      expect(areasOf(proc, fd, ioas)).toEqual([
        [APERTURE + 16n * PAGE, APERTURE + 17n * PAGE - 1n],
      ]);
      closeAndCheck(host, proc, fd);
    }
  });

  it('74: unmapping each of ten single-page areas exactly → 0 with length PAGE; the domain no longer maps them', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, 10n * PAGE);
      for (let i = 0n; i < 10n; i++) {
        expect(map(proc, fd, ioas, buf + i * PAGE, PAGE, APERTURE + i * PAGE).rc).toBe(0);
      }
      if (domains === 1) expect(checkRefs(proc, fd, buf, 10n * PAGE, 1)).toBe(0);
      for (let i = 0n; i < 10n; i++) {
        expect(unmap(proc, fd, ioas, APERTURE + i * PAGE, PAGE)).toEqual({ rc: 0, length: PAGE });
        expect(areasOf(proc, fd, ioas)).toHaveLength(Number(9n - i));
        for (const h of hwpts) {
          expect(checkMap(proc, fd, h, APERTURE + i * PAGE, PAGE, buf + i * PAGE)).toBe(-EINVAL);
        }
        expect(checkRefs(proc, fd, buf + i * PAGE, PAGE, 0)).toBe(0);
      }
      expect(host.pinnedPages()).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('75: unmapping the first or the second page of a 2-page area (a split) → ENOENT; the area stays whole', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, 2n * PAGE);
      const at = APERTURE + 16n * PAGE;
      expect(map(proc, fd, ioas, buf, 2n * PAGE, at).rc).toBe(0);
      expect(unmap(proc, fd, ioas, at, PAGE).rc).toBe(-ENOENT);
      expect(unmap(proc, fd, ioas, at + PAGE, PAGE).rc).toBe(-ENOENT);
      expect(unmap(proc, fd, ioas, at + 1n, 2n * PAGE - 1n).rc).toBe(-ENOENT);
      expect(unmap(proc, fd, ioas, at, 2n * PAGE - 1n).rc).toBe(-ENOENT);
      expect(areasOf(proc, fd, ioas)).toEqual([[at, at + 2n * PAGE - 1n]]);
      for (const h of hwpts) expect(checkMap(proc, fd, h, at, 2n * PAGE, buf)).toBe(0);
      expect(unmap(proc, fd, ioas, at, 2n * PAGE)).toEqual({ rc: 0, length: 2n * PAGE });
      closeAndCheck(host, proc, fd);
    }
  });

  it('76+77: a range cutting into the first or the last area → ENOENT; one covering 4 areas with gaps and padding → 0, length 32·PAGE (unmap_fully_contained_areas)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, 8n * PAGE);
      const base = APERTURE + 4n * PAGE;
      for (let i = 0n; i < 4n; i++) {
        expect(map(proc, fd, ioas, buf, 8n * PAGE, base + i * 16n * PAGE).rc).toBe(0);
      }
      const before = areasOf(proc, fd, ioas);
      expect(unmap(proc, fd, ioas, base - 4n * PAGE, 8n * PAGE).rc).toBe(-ENOENT);
      expect(
        unmap(proc, fd, ioas, base + 3n * 16n * PAGE + 8n * PAGE - 4n * PAGE, 8n * PAGE).rc,
      ).toBe(-ENOENT);
      expect(areasOf(proc, fd, ioas)).toEqual(before);
      // Four maps of the same buffer: each pinned it.
      if (domains === 1) expect(checkRefs(proc, fd, buf, 8n * PAGE, 4)).toBe(0);
      const all = unmap(proc, fd, ioas, base - 4n * PAGE, 3n * 16n * PAGE + 8n * PAGE + 4n * PAGE);
      expect(all).toEqual({ rc: 0, length: 32n * PAGE });
      expect(areasOf(proc, fd, ioas)).toEqual([]);
      for (const h of hwpts) expect(checkMap(proc, fd, h, base, 8n * PAGE, buf)).toBe(-EINVAL);
      expect(checkRefs(proc, fd, buf, 8n * PAGE, 0)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('78: iova 0 with length U64_MAX unmaps everything and returns the byte count; an empty IOAS gives 0 too', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 4n * PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    expect(map(proc, fd, ioas, buf, 3n * PAGE, 1n << 40n).rc).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, TWO64 - PAGE).rc).toBe(0);
    expect(unmap(proc, fd, ioas, 0n, U64_MAX)).toEqual({ rc: 0, length: 5n * PAGE });
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(unmap(proc, fd, ioas, 0n, U64_MAX)).toEqual({ rc: 0, length: 0n });
    // With a domain the pages are unpinned as well.
    const dom = env(1);
    const dbuf = buffer(dom.proc, 4n * PAGE);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf, 4n * PAGE).rc).toBe(0);
    expect(map(dom.proc, dom.fd, dom.ioas, dbuf, 2n * PAGE).rc).toBe(0);
    expect(checkRefs(dom.proc, dom.fd, dbuf, 2n * PAGE, 2)).toBe(0);
    expect(unmap(dom.proc, dom.fd, dom.ioas, 0n, U64_MAX)).toEqual({ rc: 0, length: 6n * PAGE });
    expect(checkRefs(dom.proc, dom.fd, dbuf, 4n * PAGE, 0)).toBe(0);
    expect(dom.host.pinnedPages()).toBe(0);
    closeAndCheck(dom.host, dom.proc, dom.fd);
    closeAndCheck(host, proc, fd);
  });

  it('79: length 0 → EINVAL; iova or length ≥ ULONG_MAX (not the unmap-all pair) → EOVERFLOW; iova + length − 1 wraps → EOVERFLOW; the IOAS is looked up first', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    expect(unmap(proc, fd, ioas, 0n, 0n).rc).toBe(-EINVAL);
    expect(unmap(proc, fd, ioas, U64_MAX, 1n).rc).toBe(-EOVERFLOW);
    expect(unmap(proc, fd, ioas, 1n, U64_MAX).rc).toBe(-EOVERFLOW);
    expect(unmap(proc, fd, ioas, U64_MAX, U64_MAX).rc).toBe(-EOVERFLOW);
    expect(unmap(proc, fd, ioas, TWO64 - PAGE, 2n * PAGE).rc).toBe(-EOVERFLOW);
    // Ending exactly at 2^64 − 1 does not wrap: nothing there, so ENOENT.
    expect(unmap(proc, fd, ioas, U64_MAX - 1n, 2n).rc).toBe(-ENOENT);
    // An unknown IOAS answers before any range check, even for unmap-all.
    expect(unmap(proc, fd, 999, 0n, 0n).rc).toBe(-ENOENT);
    expect(unmap(proc, fd, 999, U64_MAX, 1n).rc).toBe(-ENOENT);
    expect(unmap(proc, fd, 999, 0n, U64_MAX).rc).toBe(-ENOENT);
    expect(areasOf(proc, fd, ioas)).toEqual([[0n, PAGE - 1n]]);
    closeAndCheck(host, proc, fd);
  });

  it('81: an area with access pins: unmap calls the access back, unpins, returns 0, and the item is gone (access_pin_unmap)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const size = 16n * PAGE;
      const buf = hugeAlignedBuffer(proc);
      const acc = createAccess(proc, fd, ioas, PIN);
      expect(acc.rc).toBe(0);
      expect(map(proc, fd, ioas, buf, size, APERTURE).rc).toBe(0);
      const a = accessPages(proc, fd, acc.accessFd, APERTURE, size, buf);
      expect(a.rc).toBe(0);
      const b = accessPages(proc, fd, acc.accessFd, APERTURE + PAGE, PAGE, buf + PAGE);
      expect(b.rc).toBe(0);
      expect(b.item).not.toBe(a.item);
      // One pin per page however many users (the domain, two access items).
      expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      expect(unmap(proc, fd, ioas, APERTURE, size)).toEqual({ rc: 0, length: size });
      expect(destroyAccessPages(proc, fd, acc.accessFd, a.item)).toBe(-ENOENT);
      expect(destroyAccessPages(proc, fd, acc.accessFd, b.item)).toBe(-ENOENT);
      expect(checkRefs(proc, fd, buf, size, 0)).toBe(0);
      expect(areasOf(proc, fd, ioas)).toEqual([]);
      for (const h of hwpts) expect(checkMap(proc, fd, h, APERTURE, size, buf)).toBe(-EINVAL);
      // The access itself is still usable.
      expect(map(proc, fd, ioas, buf, size, APERTURE).rc).toBe(0);
      const c = accessPages(proc, fd, acc.accessFd, APERTURE, PAGE, buf);
      expect(c.rc).toBe(0);
      expect(destroyAccessPages(proc, fd, acc.accessFd, c.item)).toBe(0);
      expect(proc.close(acc.accessFd)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('83: not atomic: areas before a failing one stay unmapped, the error is returned and length is not written (84)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, 6n * PAGE);
      const b = APERTURE;
      expect(map(proc, fd, ioas, buf, PAGE, b).rc).toBe(0);
      expect(map(proc, fd, ioas, buf + PAGE, PAGE, b + 2n * PAGE).rc).toBe(0);
      expect(map(proc, fd, ioas, buf + 2n * PAGE, 2n * PAGE, b + 4n * PAGE).rc).toBe(0);
      // The third area sticks out of [b, b + 5·PAGE).
      expect(unmap(proc, fd, ioas, b, 5n * PAGE)).toEqual({ rc: -ENOENT, length: 5n * PAGE });
      expect(areasOf(proc, fd, ioas)).toEqual([[b + 4n * PAGE, b + 6n * PAGE - 1n]]);
      for (const h of hwpts) {
        expect(checkMap(proc, fd, h, b, PAGE, buf)).toBe(-EINVAL);
        expect(checkMap(proc, fd, h, b + 4n * PAGE, 2n * PAGE, buf + 2n * PAGE)).toBe(0);
      }
      expect(checkRefs(proc, fd, buf, 2n * PAGE, 0)).toBe(0);
      expect(checkRefs(proc, fd, buf + 2n * PAGE, 2n * PAGE, domains)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('84: length is written back only on success (argument in process memory)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 2n * PAGE);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, 0n).rc).toBe(0);
    const arg = buffer(proc, PAGE);
    const split = structs.iommu_ioas_unmap.encode({
      size: 24,
      ioas_id: ioas,
      iova: 0n,
      length: PAGE,
    });
    expect(proc.writeMemory(arg, split)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_UNMAP, arg)).toBe(-ENOENT);
    expect(proc.readMemory(arg, 24)).toEqual(split);
    // Padding past the area: success reports the area's bytes, not the range's.
    const wide = structs.iommu_ioas_unmap.encode({
      size: 24,
      ioas_id: ioas,
      iova: 0n,
      length: 16n * PAGE,
    });
    expect(proc.writeMemory(arg, wide)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_UNMAP, arg)).toBe(0);
    const back = structs.iommu_ioas_unmap.decode(proc.readMemory(arg, 24) as Uint8Array);
    expect(back).toEqual({ size: 24, ioas_id: ioas, iova: 0n, length: 2n * PAGE });
    closeAndCheck(host, proc, fd);
  });
});

describe('2.9 IOMMU_IOAS_COPY', () => {
  it('85: unknown flags → EOPNOTSUPP; no R/W → EINVAL; length, src_iova or dst_iova ≥ ULONG_MAX → EOVERFLOW; in that order', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    const dst = ioasAlloc(proc, fd);
    const ok = { dst_ioas_id: dst, src_ioas_id: ioas, length: PAGE, src_iova: 0n, dst_iova: 0n };
    for (const bad of [1 << 3, (1 << 31) >>> 0]) {
      expect(copyRaw(proc, fd, { ...ok, flags: (RW | bad) >>> 0 }).rc).toBe(-EOPNOTSUPP);
    }
    expect(copyRaw(proc, fd, { ...ok, flags: 1 << 7, length: U64_MAX }).rc).toBe(-EOPNOTSUPP);
    expect(copyRaw(proc, fd, { ...ok, flags: 0 }).rc).toBe(-EINVAL);
    expect(copyRaw(proc, fd, { ...ok, flags: FIXED }).rc).toBe(-EINVAL);
    expect(copyRaw(proc, fd, { ...ok, flags: RW, length: U64_MAX }).rc).toBe(-EOVERFLOW);
    expect(copyRaw(proc, fd, { ...ok, flags: RW, src_iova: U64_MAX }).rc).toBe(-EOVERFLOW);
    // dst_iova is checked even without FIXED_IOVA.
    expect(copyRaw(proc, fd, { ...ok, flags: RW, dst_iova: U64_MAX }).rc).toBe(-EOVERFLOW);
    expect(copyRaw(proc, fd, { ...ok, flags: 0, length: U64_MAX }).rc).toBe(-EOVERFLOW);
    // R/W is checked before the IOAS lookups.
    expect(copyRaw(proc, fd, { ...ok, flags: 0, src_ioas_id: 999 }).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, dst)).toEqual([]);
    expect(copyRaw(proc, fd, { ...ok, flags: RW | FIXED }).rc).toBe(0);
    expect(areasOf(proc, fd, dst)).toEqual([[0n, PAGE - 1n]]);
    closeAndCheck(host, proc, fd);
  });

  it('86: length 0 → EINVAL; the source range wraps → EOVERFLOW (after the source IOAS lookup, before the destination one)', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    const dst = ioasAlloc(proc, fd);
    expect(copy(proc, fd, dst, ioas, 0n, 0n).rc).toBe(-EINVAL);
    expect(copy(proc, fd, dst, ioas, TWO64 - PAGE, 2n * PAGE).rc).toBe(-EOVERFLOW);
    expect(copy(proc, fd, dst, 999, 0n, 0n).rc).toBe(-ENOENT);
    expect(copy(proc, fd, 999, ioas, 0n, 0n).rc).toBe(-EINVAL);
    expect(copy(proc, fd, 999, ioas, TWO64 - PAGE, 2n * PAGE).rc).toBe(-EOVERFLOW);
    expect(areasOf(proc, fd, dst)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });

  it('87+88: a 2048-byte source at every 511-byte step around the area: inside → 0, starting below or running past it → ENOENT (copy_sweep)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas } = env(domains);
      const buf = hugeAlignedBuffer(proc);
      const size = 16n * PAGE;
      const dst = ioasAlloc(proc, fd);
      const lastIova = domains === 1 ? APERTURE + size - 1n : APERTURE + size - 2n;
      expect(map(proc, fd, ioas, buf, lastIova - APERTURE + 1n, APERTURE).rc).toBe(0);
      let inside = 0;
      let outside = 0;
      for (let iova = APERTURE - PAGE; iova <= lastIova; iova += 511n) {
        const r = copy(proc, fd, dst, ioas, iova, MOCK_PAGE, APERTURE, W);
        if (iova < APERTURE || iova + MOCK_PAGE - 1n > lastIova) {
          expect(r.rc).toBe(-ENOENT);
          expect(areasOf(proc, fd, dst)).toEqual([]);
          outside++;
        } else {
          expect(r).toEqual({ rc: 0, iova: APERTURE });
          expect(unmap(proc, fd, dst, APERTURE, MOCK_PAGE)).toEqual({ rc: 0, length: MOCK_PAGE });
          inside++;
        }
      }
      expect(inside).toBeGreaterThan(100);
      expect(outside).toBeGreaterThan(8);
      // The source is untouched.
      expect(areasOf(proc, fd, ioas)).toEqual([[APERTURE, lastIova]]);
      if (domains === 1) expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('87: the source must be covered without a hole; adjacent source areas become one destination area each', () => {
    const { host, proc, fd, ioas } = env(0);
    const buf = buffer(proc, 8n * PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    expect(map(proc, fd, ioas, buf + PAGE, 2n * PAGE, PAGE).rc).toBe(0);
    expect(map(proc, fd, ioas, buf + 4n * PAGE, PAGE, 4n * PAGE).rc).toBe(0);
    const dst = ioasAlloc(proc, fd);
    // Over the hole [3·PAGE, 4·PAGE).
    expect(copy(proc, fd, dst, ioas, 2n * PAGE, 3n * PAGE, 0n).rc).toBe(-ENOENT);
    expect(areasOf(proc, fd, dst)).toEqual([]);
    // Across the first two (adjacent) areas, starting and ending mid-area.
    expect(copy(proc, fd, dst, ioas, MOCK_PAGE, 2n * PAGE, 0n).rc).toBe(0);
    expect(areasOf(proc, fd, dst)).toEqual([
      [0n, MOCK_PAGE - 1n],
      [MOCK_PAGE, 2n * PAGE - 1n],
    ]);
    closeAndCheck(host, proc, fd);
  });

  it('89: copy inside one IOAS to right after the source → 0; both IOVAs map the same pages, pinned once (copy_area)', () => {
    for (const domains of [0, 1] as const) {
      const { host, proc, fd, ioas, hwpts } = env(domains);
      const buf = buffer(proc, PAGE);
      expect(map(proc, fd, ioas, buf, PAGE, APERTURE).rc).toBe(0);
      expect(copy(proc, fd, ioas, ioas, APERTURE, PAGE, APERTURE + PAGE, W)).toEqual({
        rc: 0,
        iova: APERTURE + PAGE,
      });
      expect(areasOf(proc, fd, ioas)).toEqual([
        [APERTURE, APERTURE + PAGE - 1n],
        [APERTURE + PAGE, APERTURE + 2n * PAGE - 1n],
      ]);
      for (const h of hwpts) {
        expect(checkMap(proc, fd, h, APERTURE, PAGE, buf)).toBe(0);
        expect(checkMap(proc, fd, h, APERTURE + PAGE, PAGE, buf)).toBe(0);
      }
      expect(checkRefs(proc, fd, buf, PAGE, domains)).toBe(0);
      // The copy is an area of its own: unmapping it leaves the source.
      expect(unmap(proc, fd, ioas, APERTURE + PAGE, PAGE).rc).toBe(0);
      expect(areasOf(proc, fd, ioas)).toEqual([[APERTURE, APERTURE + PAGE - 1n]]);
      expect(checkRefs(proc, fd, buf, PAGE, domains)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });

  it('90: copy into a new IOAS at FIXED dst 0 → 0; unmapping the source leaves the copy (copy_area)', () => {
    const { host, proc, fd, ioas } = env(1);
    const buf = buffer(proc, PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, APERTURE).rc).toBe(0);
    const dst = ioasAlloc(proc, fd);
    expect(copy(proc, fd, dst, ioas, APERTURE, PAGE, 0n, W)).toEqual({ rc: 0, iova: 0n });
    expect(areasOf(proc, fd, dst)).toEqual([[0n, PAGE - 1n]]);
    expect(unmap(proc, fd, ioas, APERTURE, PAGE).rc).toBe(0);
    expect(areasOf(proc, fd, dst)).toEqual([[0n, PAGE - 1n]]);
    // The destination has no domain, so nothing stays pinned.
    expect(checkRefs(proc, fd, buf, PAGE, 0)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  for (const file of [false, true]) {
    it(`91+92: copy from an access-pinned IOAS without a domain into a domain IOAS → the domain maps the same pages, refs stay 1 (user_copy${file ? ', memfd' : ''})`, () => {
      const { host, proc, fd, ioas, hwpts } = env(1);
      const size = 16n * PAGE;
      const mem = file ? memfdBuffer(proc, size) : { mfd: -1, va: hugeAlignedBuffer(proc) };
      const buf = mem.va;
      const src = ioasAlloc(proc, fd);
      const m = file ? mapFile(proc, fd, src, mem.mfd, 0n, size) : map(proc, fd, src, buf, size);
      expect(m.rc).toBe(0);
      const acc = createAccess(proc, fd, src, PIN);
      expect(acc.rc).toBe(0);
      const pin = accessPages(proc, fd, acc.accessFd, m.iova, size, buf);
      expect(pin.rc).toBe(0);
      expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      expect(copy(proc, fd, ioas, src, m.iova, size, APERTURE, W).rc).toBe(0);
      expect(checkMap(proc, fd, hwpts[0] as number, APERTURE, size, buf)).toBe(0);
      // Copy does not pin again, and a second domain is filled from the pinned pages.
      expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      const second = mockDomain(proc, fd, ioas);
      expect(second.rc).toBe(0);
      expect(checkMap(proc, fd, second.hwptId, APERTURE, size, buf)).toBe(0);
      expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      expect(destroy(proc, fd, second.stdevId)).toBe(0);
      expect(destroyAccessPages(proc, fd, acc.accessFd, pin.item)).toBe(0);
      // The domain still holds them.
      expect(checkRefs(proc, fd, buf, size, 1)).toBe(0);
      expect(unmap(proc, fd, ioas, APERTURE, size).rc).toBe(0);
      expect(checkRefs(proc, fd, buf, size, 0)).toBe(0);
      expect(proc.close(acc.accessFd)).toBe(0);
      closeAndCheck(host, proc, fd);
    });
  }

  it('93: a WRITEABLE copy of pages mapped read-only → EPERM; a READABLE copy works', () => {
    const { host, proc, fd, ioas, hwpts } = env(1);
    const buf = buffer(proc, 2n * PAGE);
    const src = ioasAlloc(proc, fd);
    expect(map(proc, fd, src, buf, 2n * PAGE, 0n, R).rc).toBe(0);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE, W).rc).toBe(-EPERM);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE, RW).rc).toBe(-EPERM);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, undefined, RW).rc).toBe(-EPERM);
    expect(areasOf(proc, fd, ioas)).toEqual([]);
    expect(host.pinnedPages()).toBe(0);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE, R).rc).toBe(0);
    expect(checkMap(proc, fd, hwpts[0] as number, APERTURE, 2n * PAGE, buf)).toBe(0);
    // Writeable pages may be copied read-only.
    const wsrc = ioasAlloc(proc, fd);
    expect(map(proc, fd, wsrc, buf, 2n * PAGE, 0n, RW).rc).toBe(0);
    expect(copy(proc, fd, ioas, wsrc, 0n, PAGE, APERTURE + 4n * PAGE, R).rc).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('94: unknown source or destination IOAS → ENOENT; the destination checks are those of MAP; dst_iova is written only on success', () => {
    const { host, proc, fd, ioas, hwpts } = env(1);
    const buf = hugeAlignedBuffer(proc);
    const src = ioasAlloc(proc, fd);
    expect(map(proc, fd, src, buf, 4n * PAGE, 0n).rc).toBe(0);
    expect(copy(proc, fd, ioas, 999, 0n, PAGE).rc).toBe(-ENOENT);
    expect(copy(proc, fd, 999, src, 0n, PAGE).rc).toBe(-ENOENT);
    expect(copy(proc, fd, hwpts[0] as number, src, 0n, PAGE).rc).toBe(-ENOENT);
    // The destination has the mock domain: alignment 2048, aperture [16 MiB, 2 GiB − 1].
    expect(copy(proc, fd, ioas, src, 0n, PAGE, APERTURE + 1024n).rc).toBe(-EINVAL);
    expect(copy(proc, fd, ioas, src, 0n, 1024n, APERTURE).rc).toBe(-EINVAL);
    expect(copy(proc, fd, ioas, src, 1024n, MOCK_PAGE, APERTURE).rc).toBe(-EINVAL);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE - PAGE).rc).toBe(-EINVAL);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE).rc).toBe(0);
    expect(copy(proc, fd, ioas, src, 0n, 2n * PAGE, APERTURE + PAGE).rc).toBe(-EEXIST);
    expect(areasOf(proc, fd, ioas)).toEqual([[APERTURE, APERTURE + 2n * PAGE - 1n]]);
    // Automatic dst IOVA: first fit, aligned from the source's VA.
    expect(copy(proc, fd, ioas, src, 0n, 4n * PAGE)).toEqual({ rc: 0, iova: APERTURE + 4n * PAGE });
    // ENOSPC in a destination with no free space; the sentinel stays.
    const full = ioasAlloc(proc, fd);
    expect(addReserved(proc, fd, full, 0n, U64_MAX)).toBe(0);
    const sentinel = 0x7777000n;
    const nospc = copyRaw(proc, fd, {
      flags: RW,
      dst_ioas_id: full,
      src_ioas_id: src,
      length: PAGE,
      src_iova: 0n,
      dst_iova: sentinel,
    });
    expect(nospc).toMatchObject({ rc: -ENOSPC, out: { dst_iova: sentinel } });
    expect(copy(proc, fd, full, src, 0n, PAGE, PAGE).rc).toBe(-EINVAL);
    expect(areasOf(proc, fd, full)).toEqual([]);
    // Through process memory: failure leaves the bytes, success writes dst_iova.
    const arg = buffer(proc, PAGE);
    const fail = structs.iommu_ioas_copy.encode({
      size: 40,
      flags: RW,
      dst_ioas_id: full,
      src_ioas_id: src,
      length: PAGE,
      src_iova: 0n,
      dst_iova: sentinel,
    });
    expect(proc.writeMemory(arg, fail)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_COPY, arg)).toBe(-ENOSPC);
    expect(proc.readMemory(arg, 40)).toEqual(fail);
    const fresh = ioasAlloc(proc, fd);
    const good = structs.iommu_ioas_copy.encode({
      ...structs.iommu_ioas_copy.decode(fail),
      dst_ioas_id: fresh,
    });
    expect(proc.writeMemory(arg, good)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_IOAS_COPY, arg)).toBe(0);
    const back = structs.iommu_ioas_copy.decode(proc.readMemory(arg, 40) as Uint8Array);
    expect(back).toEqual({ ...structs.iommu_ioas_copy.decode(good), dst_iova: PAGE });
    // A reservation hit by a FIXED destination.
    expect(addReserved(proc, fd, fresh, 8n * PAGE, PAGE)).toBe(0);
    expect(copy(proc, fd, fresh, src, 0n, 2n * PAGE, 7n * PAGE).rc).toBe(-EINVAL);
    expect(addReserved(proc, fd, fresh, PAGE, PAGE)).toBe(-EADDRINUSE);
    closeAndCheck(host, proc, fd);
  });
});
