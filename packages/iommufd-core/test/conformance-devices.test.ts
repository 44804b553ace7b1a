/**
 * Device attach, replace and detach through the selftest's mock devices
 * (kernel-semantics.md 2.12, 108–122) and section 3's device-side test ops:
 * ADD_RESERVED, MOCK_DOMAIN(_FLAGS), MD_CHECK_MAP, MD_CHECK_REFS,
 * SET_TEMP_MEMORY_LIMIT and DEV_CHECK_CACHE.
 */
import {
  EADDRINUSE,
  EBUSY,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type Process } from '../src/index.js';
import {
  addReserved,
  allowIovas,
  checkMap,
  checkRefs,
  destroy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  mockReplace,
  PAGE,
  setup,
  U64_MAX,
  unmap,
} from './helpers.js';
import {
  checkAccessRw,
  createAccess,
  devCheckCache,
  filledBuffer,
  objectsOf,
  setTempMemoryLimit,
  testCmd,
  vfioAttach,
  vfioBind,
} from './helpers-c.js';

const BUFFER_PAGES = 16;
const BUFFER = BigInt(BUFFER_PAGES) * PAGE;
const APERTURE = BigInt(MOCK_APERTURE_START);
const APERTURE_LAST = BigInt(MOCK_APERTURE_LAST);
const FULL = [{ start: 0n, last: U64_MAX }];
const MOCK_RANGE = [{ start: APERTURE, last: APERTURE_LAST }];

/** An IOAS, optionally a mock domain on it, and a 16-page buffer. */
function fixture(withDomain: boolean, seed = 1) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const md = withDomain ? mockDomain(proc, fd, ioas) : undefined;
  if (md !== undefined) expect(md.rc).toBe(0);
  const buffer = filledBuffer(proc, Number(BUFFER), seed);
  return { host, proc, fd, ioas, md, buffer };
}

/** Close, then nothing pinned (CHECK_REFS 0 from a fresh fd) and no model exception. */
function teardown(host: Host, proc: Process, fd: number, buffer: bigint): void {
  expect(proc.close(fd)).toBe(0);
  const check = proc.open('/dev/iommu');
  expect(checkRefs(proc, check, buffer, BUFFER, 0)).toBe(0);
  expect(proc.close(check)).toBe(0);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

function errnoOf(proc: Process): string | undefined {
  return proc.lastError()?.name;
}

function hwptsOf(proc: Process, fd: number, ioas: number): number[] {
  return (proc.inspect(fd)?.ioas.find((i) => i.id === ioas)?.hwpts ?? []).map((h) => h.id);
}

function usersOf(proc: Process, fd: number, id: number): number | undefined {
  return proc.inspect(fd)?.objects.find((o) => o.id === id)?.users;
}

describe('2.12 device attach and replace (mock devices)', () => {
  it('108: MOCK_DOMAIN on an IOAS makes a selftest object, an idev and an automatic HWPT (ids 2, 3, 4) and narrows the IOAS to the aperture', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(ioas).toBe(1);
    const md = mockDomain(proc, fd, ioas);
    expect(md).toEqual({ rc: 0, stdevId: 2, hwptId: 4, idevId: 3 });
    expect(objectsOf(proc, fd)).toEqual(['1:IOAS', '2:SELFTEST', '3:DEVICE', '4:HWPT_PAGING']);
    expect(proc.inspect(fd)?.ioas[0]?.hwpts).toEqual([
      { id: 4, auto: true, iommu: 'iommufd-selftest' },
    ]);
    const ranges = iovaRanges(proc, fd, ioas);
    expect(ranges.ranges).toEqual(MOCK_RANGE);
    expect(ranges.alignment).toBe(2048n);
    for (let word = 0; word < 4; word++) {
      expect(devCheckCache(proc, fd, md.idevId, word, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe(0);
    }
    // 21: destroying the selftest object detaches, unbinds and frees the unused automatic HWPT.
    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    expect(objectsOf(proc, fd)).toEqual(['1:IOAS']);
    expect(iovaRanges(proc, fd, ioas)).toMatchObject({ ranges: FULL, alignment: 1n });
    expect(proc.close(fd)).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it('109/13: MOCK_DOMAIN on an existing HWPT id attaches to that HWPT, which then cannot be destroyed', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const first = md as NonNullable<typeof md>;
    const second = mockDomain(proc, fd, first.hwptId);
    expect(second.rc).toBe(0);
    expect(second.hwptId).toBe(first.hwptId);
    expect(second.stdevId).not.toBe(first.stdevId);
    expect(hwptsOf(proc, fd, ioas)).toEqual([first.hwptId]);
    expect(usersOf(proc, fd, first.hwptId)).toBe(2);
    expect(destroy(proc, fd, first.hwptId)).toBe(-EBUSY);
    expect(destroy(proc, fd, ioas)).toBe(-EBUSY);
    // The HWPT lives while any device uses it, and goes with the last one.
    expect(destroy(proc, fd, first.stdevId)).toBe(0);
    expect(hwptsOf(proc, fd, ioas)).toEqual([first.hwptId]);
    expect(usersOf(proc, fd, first.hwptId)).toBe(1);
    expect(destroy(proc, fd, second.stdevId)).toBe(0);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);
    expect(destroy(proc, fd, ioas)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('110/8: MOCK_DOMAIN on id 0 or an unknown id → ENOENT, on an object that is neither IOAS nor HWPT → EINVAL; nothing is left behind', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const before = objectsOf(proc, fd);
    expect(mockDomain(proc, fd, 0).rc).toBe(-ENOENT);
    expect(mockDomain(proc, fd, 99).rc).toBe(-ENOENT);
    expect(errnoOf(proc)).toBe('ENOENT');
    expect(mockDomain(proc, fd, md?.idevId ?? 0).rc).toBe(-EINVAL);
    expect(mockDomain(proc, fd, md?.stdevId ?? 0).rc).toBe(-EINVAL);
    expect(objectsOf(proc, fd)).toEqual(before);
    // The failed attempts left no hole in the ids: the next object gets the next id.
    expect(ioasAlloc(proc, fd)).toBe(before.length + 1);
    expect(hwptsOf(proc, fd, ioas)).toEqual([md?.hwptId]);
    teardown(host, proc, fd, buffer);
  });

  it('111/121: MOCK_DOMAIN_FLAGS with unknown device flags → EINVAL; NO_DIRTY, HUGE_IOVA and PASID devices attach (NO_DIRTY reuses the automatic HWPT)', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const before = objectsOf(proc, fd);
    for (const bad of [8, 0x10, 0x80000000, MOCK_FLAGS_DEVICE_NO_DIRTY | 0x100]) {
      expect(mockDomain(proc, fd, ioas, bad).rc).toBe(-EINVAL);
    }
    expect(errnoOf(proc)).toBe('EINVAL');
    expect(objectsOf(proc, fd)).toEqual(before);
    const noDirty = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(noDirty.rc).toBe(0);
    expect(noDirty.hwptId).toBe(md?.hwptId);
    for (const flags of [MOCK_FLAGS_DEVICE_HUGE_IOVA, MOCK_FLAGS_DEVICE_PASID, 0]) {
      const got = mockDomain(proc, fd, ioas, flags);
      expect(got.rc).toBe(0);
      expect(devCheckCache(proc, fd, got.idevId, 3, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe(0);
    }
    // Plain MOCK_DOMAIN (op 2) ignores the dev_flags word.
    const plain = testCmd(proc, fd, {
      op: IOMMU_TEST_OP_MOCK_DOMAIN,
      id: ioas,
      mock_domain_flags: { dev_flags: 0xffff },
    });
    expect(plain.rc).toBe(0);
    expect(plain.out.mock_domain.out_hwpt_id).toBe(md?.hwptId);
    teardown(host, proc, fd, buffer);
  });

  it('112: a second mock device on the same IOAS reuses the automatic HWPT', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const second = mockDomain(proc, fd, ioas);
    expect(second.rc).toBe(0);
    expect(second.hwptId).toBe(md?.hwptId);
    expect(hwptsOf(proc, fd, ioas)).toEqual([md?.hwptId]);
    expect(usersOf(proc, fd, md?.hwptId ?? 0)).toBe(2);
    // One domain: each page pinned once.
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('116: adding and removing a second domain while an area exists fills it (every 2048-aligned start and length in 8 pages), refs stay 1', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const hwpt = md?.hwptId ?? 0;
    const size = 8 * 4096;
    const problems: string[] = [];
    for (let start = 0; start < size; start += 2048) {
      for (let end = start + 2048; end < size; end += 2048) {
        const length = BigInt(end - start);
        const va = buffer + BigInt(start);
        const pageStart = buffer + BigInt(Math.floor(start / 4096) * 4096);
        const pageBytes = BigInt(Math.floor(end / 4096) * 4096 - Math.floor(start / 4096) * 4096);
        const m = map(proc, fd, ioas, va, length);
        const other = mockDomain(proc, fd, ioas);
        const results = [
          m.rc,
          other.rc,
          checkMap(proc, fd, hwpt, m.iova, length, va),
          checkMap(proc, fd, other.hwptId, m.iova, length, va),
          pageBytes === 0n ? 0 : checkRefs(proc, fd, pageStart, pageBytes, 1),
          destroy(proc, fd, other.stdevId),
          checkMap(proc, fd, hwpt, m.iova, length, va),
          pageBytes === 0n ? 0 : checkRefs(proc, fd, pageStart, pageBytes, 1),
          unmap(proc, fd, ioas, m.iova, length).rc,
          checkRefs(proc, fd, buffer, BUFFER, 0),
        ];
        if (results.some((r) => r !== 0)) problems.push(`[${start}, ${end}): ${results.join(',')}`);
      }
    }
    expect(problems).toEqual([]);
    // The second device shared the automatic HWPT, so a fresh HWPT never appeared.
    expect(hwptsOf(proc, fd, ioas)).toEqual([hwpt]);
    teardown(host, proc, fd, buffer);
  });

  it('117/118: REPLACE to another IOAS frees the old automatic HWPT (its id → ENOENT); REPLACE to the current HWPT is a no-op; back to the first IOAS works', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const first = md as NonNullable<typeof md>;
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const other = ioasAlloc(proc, fd);
    const moved = mockReplace(proc, fd, first.stdevId, other);
    expect(moved.rc).toBe(0);
    expect(moved.ptId).not.toBe(first.hwptId);
    expect(objectsOf(proc, fd)).not.toContain(`${first.hwptId}:HWPT_PAGING`);
    expect(hwptsOf(proc, fd, ioas)).toEqual([]);
    expect(hwptsOf(proc, fd, other)).toEqual([moved.ptId]);
    // The first IOAS lost its domain: full ranges again and its pages unpinned.
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual(FULL);
    expect(iovaRanges(proc, fd, other).ranges).toEqual(MOCK_RANGE);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(mockReplace(proc, fd, first.stdevId, first.hwptId).rc).toBe(-ENOENT);
    expect(errnoOf(proc)).toBe('ENOENT');
    expect(hwptsOf(proc, fd, other)).toEqual([moved.ptId]);

    // 118: the same HWPT (or its IOAS again) changes nothing.
    expect(mockReplace(proc, fd, first.stdevId, moved.ptId)).toEqual({ rc: 0, ptId: moved.ptId });
    expect(mockReplace(proc, fd, first.stdevId, other)).toEqual({ rc: 0, ptId: moved.ptId });
    expect(usersOf(proc, fd, moved.ptId)).toBe(1);
    const back = mockReplace(proc, fd, first.stdevId, ioas);
    expect(back.rc).toBe(0);
    expect(hwptsOf(proc, fd, ioas)).toEqual([back.ptId]);
    expect(checkMap(proc, fd, back.ptId, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    expect(destroy(proc, fd, other)).toBe(0);
    // A stdev that does not exist, or an id of another type.
    expect(mockReplace(proc, fd, 99, ioas).rc).toBe(-ENOENT);
    expect(mockReplace(proc, fd, first.idevId, ioas).rc).toBe(-ENOENT);
    teardown(host, proc, fd, buffer);
  });

  it('120: attaching a domain while an area lies outside its aperture → EADDRINUSE, and nothing changes', () => {
    for (const iova of [0n, APERTURE - PAGE, APERTURE_LAST + 1n]) {
      const { host, proc, fd, ioas, buffer } = fixture(false);
      expect(map(proc, fd, ioas, buffer, PAGE, iova).rc).toBe(0);
      const objects = objectsOf(proc, fd);
      expect(mockDomain(proc, fd, ioas).rc).toBe(-EADDRINUSE);
      expect(errnoOf(proc)).toBe('EADDRINUSE');
      expect(objectsOf(proc, fd)).toEqual(objects);
      expect(iovaRanges(proc, fd, ioas)).toMatchObject({ ranges: FULL, alignment: 1n });
      expect(proc.inspect(fd)?.ioas[0]?.areas.map((a) => a.iova)).toEqual([iova]);
      expect(checkRefs(proc, fd, buffer, PAGE, 0)).toBe(0);
      // Once the area is gone the same attach works.
      expect(unmap(proc, fd, ioas, iova, PAGE).rc).toBe(0);
      expect(mockDomain(proc, fd, ioas).rc).toBe(0);
      teardown(host, proc, fd, buffer);
    }
  });

  it('113: lazy maps made by a forked child that has exited cannot fill a new domain → EFAULT, nothing created', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    const { accessFd } = createAccess(proc, fd, ioas, 0);
    const child = proc.fork();
    expect(map(child, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    child.exit();
    const objects = objectsOf(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(-EFAULT);
    expect(errnoOf(proc)).toBe('EFAULT');
    expect(objectsOf(proc, fd)).toEqual(objects);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([{ start: 0n, last: (1n << 64n) - 1n }]);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('114: when a domain existed while the child mapped, a new domain fills from it after the child exits; ACCESS_RW reads the data', () => {
    const { host, proc, fd, ioas, buffer } = fixture(true, 21);
    const { accessFd } = createAccess(proc, fd, ioas, 0);
    const child = proc.fork();
    expect(map(child, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    child.exit();
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, BUFFER, buffer)).toBe(0);
    checkAccessRw(proc, fd, accessFd, APERTURE, buffer, BUFFER, 0, 22);
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('115: lazy maps made by a child that is still alive are pinned remotely when a domain arrives', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false, 31);
    const { accessFd } = createAccess(proc, fd, ioas, 0);
    const child = proc.fork();
    expect(map(child, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    // The child's mm is charged for the pins, not the parent's.
    expect(child.status().pinnedBytes).toBe(BUFFER);
    expect(proc.status().pinnedBytes).toBe(0n);
    checkAccessRw(proc, fd, accessFd, APERTURE, buffer, BUFFER, 0, 32);
    child.exit();
    expect(proc.close(accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });
});

describe('section 3: device-side test ops', () => {
  it('ADD_RESERVED: unknown IOAS → ENOENT; over an area or an allowed range → EADDRINUSE (nothing reserved); overlapping reservations are fine', () => {
    const { host, proc, fd, ioas, buffer } = fixture(false);
    expect(addReserved(proc, fd, 99, PAGE, PAGE)).toBe(-ENOENT);
    expect(map(proc, fd, ioas, buffer, PAGE, 4n * PAGE).rc).toBe(0);
    expect(addReserved(proc, fd, ioas, 3n * PAGE, 2n * PAGE)).toBe(-EADDRINUSE);
    expect(errnoOf(proc)).toBe('EADDRINUSE');
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual(FULL);
    expect(allowIovas(proc, fd, ioas, [{ start: 16n * PAGE, last: 32n * PAGE - 1n }])).toBe(0);
    expect(addReserved(proc, fd, ioas, 31n * PAGE, 4n * PAGE)).toBe(-EADDRINUSE);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual(FULL);
    // Two overlapping reservations merge in the reported ranges.
    expect(addReserved(proc, fd, ioas, 8n * PAGE, 2n * PAGE)).toBe(0);
    expect(addReserved(proc, fd, ioas, 9n * PAGE, 3n * PAGE)).toBe(0);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([
      { start: 0n, last: 8n * PAGE - 1n },
      { start: 12n * PAGE, last: U64_MAX },
    ]);
    // A reserved range refuses FIXED maps (EINVAL) but not the areas around it.
    expect(map(proc, fd, ioas, buffer, PAGE, 11n * PAGE).rc).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buffer, PAGE, 12n * PAGE).rc).toBe(0);
    // The id of something that is not an IOAS.
    const access = createAccess(proc, fd, ioas, 0);
    expect(addReserved(proc, fd, ioas + 1, 64n * PAGE, PAGE)).toBe(-ENOENT);
    expect(proc.close(access.accessFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('MD_CHECK_MAP: misaligned iova, length or uptr → EINVAL before the lookup; not a paging HWPT → ENOENT; not a mock domain → EINVAL; a mismatch → EINVAL; unmapped uptr → EFAULT', () => {
    const host = createHost({
      selftest: true,
      iommus: [{ name: 'vtd0', model: 'vtd' }],
      devices: [{ name: '0000:01:00.0', iommu: 'vtd0' }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    const buffer = filledBuffer(proc, Number(BUFFER), 3);
    const other = filledBuffer(proc, Number(BUFFER), 4);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, APERTURE + 2048n, 2048n, buffer + 2048n)).toBe(0);
    // Alignment comes first, even for an id that does not exist.
    expect(checkMap(proc, fd, md.hwptId, APERTURE + 1024n, 2048n, buffer)).toBe(-EINVAL);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, 1024n, buffer)).toBe(-EINVAL);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, 2048n, buffer + 1024n)).toBe(-EINVAL);
    expect(checkMap(proc, fd, 99, APERTURE, 2048n, buffer + 1024n)).toBe(-EINVAL);
    expect(checkMap(proc, fd, md.hwptId, APERTURE, 4096n, U64_MAX - 2047n)).toBe(-EINVAL);
    // Lookups: the IOAS, the idev and unknown ids are not paging HWPTs.
    expect(checkMap(proc, fd, ioas, APERTURE, PAGE, buffer)).toBe(-ENOENT);
    expect(checkMap(proc, fd, md.idevId, APERTURE, PAGE, buffer)).toBe(-ENOENT);
    expect(checkMap(proc, fd, 99, APERTURE, PAGE, buffer)).toBe(-ENOENT);
    // A VT-d HWPT in the same context is a paging HWPT but not a mock domain.
    const dev = proc.open('/dev/vfio/devices/vfio0');
    expect(vfioBind(proc, dev, fd).rc).toBe(0);
    const vtd = vfioAttach(proc, dev, ioas);
    expect(vtd.rc).toBe(0);
    expect(vtd.ptId).not.toBe(md.hwptId);
    expect(checkMap(proc, fd, vtd.ptId, APERTURE, BUFFER, buffer)).toBe(-EINVAL);
    // Mismatches: other pages, a hole in the domain.
    expect(checkMap(proc, fd, md.hwptId, APERTURE, BUFFER, other)).toBe(-EINVAL);
    expect(checkMap(proc, fd, md.hwptId, APERTURE + PAGE, PAGE, buffer)).toBe(-EINVAL);
    expect(checkMap(proc, fd, md.hwptId, APERTURE + BUFFER, PAGE, buffer)).toBe(-EINVAL);
    expect(errnoOf(proc)).toBe('EINVAL');
    // uptr that is not mapped in the process.
    expect(checkMap(proc, fd, md.hwptId, APERTURE, PAGE, 0x10000n)).toBe(-EFAULT);
    expect(proc.close(dev)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('MD_CHECK_REFS: unaligned → EINVAL; a wrong count → EIO; an unmapped page → EFAULT', () => {
    const { host, proc, fd, ioas, buffer } = fixture(true);
    expect(checkRefs(proc, fd, buffer, BUFFER, 0)).toBe(0);
    expect(checkRefs(proc, fd, buffer + 8n, PAGE, 0)).toBe(-EINVAL);
    expect(checkRefs(proc, fd, buffer, PAGE + 8n, 0)).toBe(-EINVAL);
    expect(checkRefs(proc, fd, U64_MAX - PAGE + 1n, 2n * PAGE, 0)).toBe(-EINVAL);
    expect(map(proc, fd, ioas, buffer + PAGE, PAGE, APERTURE).rc).toBe(0);
    expect(checkRefs(proc, fd, buffer + PAGE, PAGE, 1)).toBe(0);
    expect(checkRefs(proc, fd, buffer, 2n * PAGE, 1)).toBe(-EIO);
    expect(checkRefs(proc, fd, buffer, 2n * PAGE, 0)).toBe(-EIO);
    expect(checkRefs(proc, fd, buffer + PAGE, PAGE, 2)).toBe(-EIO);
    expect(errnoOf(proc)).toBe('EIO');
    expect(checkRefs(proc, fd, 0x10000n, PAGE, 0)).toBe(-EFAULT);
    teardown(host, proc, fd, buffer);
  });

  it('SET_TEMP_MEMORY_LIMIT: below 12 → EINVAL (unchanged); 12 and 16 are taken and maps still work; the default comes back', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    expect(host.tempMemoryLimit).toBe(65536);
    expect(setTempMemoryLimit(proc, fd, 11)).toBe(-EINVAL);
    expect(setTempMemoryLimit(proc, fd, 0)).toBe(-EINVAL);
    expect(host.tempMemoryLimit).toBe(65536);
    expect(setTempMemoryLimit(proc, fd, 12)).toBe(0);
    expect(host.tempMemoryLimit).toBe(12);
    expect(setTempMemoryLimit(proc, fd, 16)).toBe(0);
    expect(host.tempMemoryLimit).toBe(16);
    // The mock_domain_limit fixture: small batches change nothing visible.
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    expect(checkMap(proc, fd, md?.hwptId ?? 0, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    expect(setTempMemoryLimit(proc, fd, 65536)).toBe(0);
    expect(host.tempMemoryLimit).toBe(65536);
    teardown(host, proc, fd, buffer);
  });

  it('DEV_CHECK_CACHE: the four words start at 0xbaddad; another value or word 4 → EINVAL; an id that is not an idev → ENOENT', () => {
    const { host, proc, fd, ioas, md, buffer } = fixture(true);
    const idev = md?.idevId ?? 0;
    for (let word = 0; word < 4; word++) {
      expect(devCheckCache(proc, fd, idev, word, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe(0);
      expect(devCheckCache(proc, fd, idev, word, 0)).toBe(-EINVAL);
    }
    expect(devCheckCache(proc, fd, idev, 4, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe(-EINVAL);
    expect(errnoOf(proc)).toBe('EINVAL');
    for (const notIdev of [md?.stdevId ?? 0, md?.hwptId ?? 0, ioas, 0, 99]) {
      expect(devCheckCache(proc, fd, notIdev, 0, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe(-ENOENT);
    }
    teardown(host, proc, fd, buffer);
  });

  it('an unknown op → EOPNOTSUPP', () => {
    const { host, proc, fd, buffer } = fixture(false);
    for (const op of [0, 99, 0xffffffff]) {
      expect(testCmd(proc, fd, { op }).rc).toBe(-EOPNOTSUPP);
    }
    teardown(host, proc, fd, buffer);
  });
});
