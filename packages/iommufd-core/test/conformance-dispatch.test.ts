/**
 * Conformance: generic ioctl dispatch (catalog 2.1), IOMMU_DESTROY and object
 * lifetime (2.2), IOMMU_IOAS_ALLOC (2.3) and lastError().
 */
import {
  _IO,
  _IOC,
  _IOC_READ,
  _IOC_WRITE,
  E2BIG,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOTTY,
  EOPNOTSUPP,
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VFIO_IOAS,
  IOMMU_VIOMMU_ALLOC,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost } from '../src/index.js';
import {
  addReserved,
  checkMap,
  checkRefs,
  destroy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  option,
  PAGE,
  setup,
  U64_MAX,
  unmap,
} from './helpers.js';
import {
  closeClean,
  createAccess,
  expectErrno,
  ioasReport,
  MOCK_LAST,
  MOCK_START,
  objectIds,
  sized,
} from './helpers-a.js';

/**
 * Every /dev/iommu command with the kernel's minimum size (offsetofend of
 * the field main.c's IOCTL_OP names) and sizeof, written out from the
 * kernel headers rather than taken from the model's own table.
 */
const COMMANDS: readonly { name: string; request: number; min: number; size: number }[] = [
  { name: 'IOMMU_DESTROY', request: IOMMU_DESTROY, min: 8, size: 8 },
  { name: 'IOMMU_IOAS_ALLOC', request: IOMMU_IOAS_ALLOC, min: 12, size: 12 },
  { name: 'IOMMU_IOAS_ALLOW_IOVAS', request: IOMMU_IOAS_ALLOW_IOVAS, min: 24, size: 24 },
  { name: 'IOMMU_IOAS_COPY', request: IOMMU_IOAS_COPY, min: 40, size: 40 },
  { name: 'IOMMU_IOAS_IOVA_RANGES', request: IOMMU_IOAS_IOVA_RANGES, min: 32, size: 32 },
  { name: 'IOMMU_IOAS_MAP', request: IOMMU_IOAS_MAP, min: 40, size: 40 },
  { name: 'IOMMU_IOAS_UNMAP', request: IOMMU_IOAS_UNMAP, min: 24, size: 24 },
  { name: 'IOMMU_OPTION', request: IOMMU_OPTION, min: 24, size: 24 },
  { name: 'IOMMU_VFIO_IOAS', request: IOMMU_VFIO_IOAS, min: 12, size: 12 },
  { name: 'IOMMU_HWPT_ALLOC', request: IOMMU_HWPT_ALLOC, min: 24, size: 48 },
  { name: 'IOMMU_GET_HW_INFO', request: IOMMU_GET_HW_INFO, min: 32, size: 40 },
  {
    name: 'IOMMU_HWPT_SET_DIRTY_TRACKING',
    request: IOMMU_HWPT_SET_DIRTY_TRACKING,
    min: 16,
    size: 16,
  },
  { name: 'IOMMU_HWPT_GET_DIRTY_BITMAP', request: IOMMU_HWPT_GET_DIRTY_BITMAP, min: 48, size: 48 },
  { name: 'IOMMU_HWPT_INVALIDATE', request: IOMMU_HWPT_INVALIDATE, min: 32, size: 32 },
  { name: 'IOMMU_FAULT_QUEUE_ALLOC', request: IOMMU_FAULT_QUEUE_ALLOC, min: 16, size: 16 },
  { name: 'IOMMU_IOAS_MAP_FILE', request: IOMMU_IOAS_MAP_FILE, min: 40, size: 40 },
  { name: 'IOMMU_VIOMMU_ALLOC', request: IOMMU_VIOMMU_ALLOC, min: 24, size: 40 },
  { name: 'IOMMU_VDEVICE_ALLOC', request: IOMMU_VDEVICE_ALLOC, min: 24, size: 24 },
  { name: 'IOMMU_IOAS_CHANGE_PROCESS', request: IOMMU_IOAS_CHANGE_PROCESS, min: 8, size: 8 },
  { name: 'IOMMU_VEVENTQ_ALLOC', request: IOMMU_VEVENTQ_ALLOC, min: 28, size: 32 },
  { name: 'IOMMU_HW_QUEUE_ALLOC', request: IOMMU_HW_QUEUE_ALLOC, min: 40, size: 40 },
  { name: 'IOMMU_TEST_CMD', request: IOMMU_TEST_CMD, min: 68, size: 72 },
];

const IOMMUFD_TYPE = 0x3b;

describe('2.1 generic dispatch', () => {
  it('1: a NULL argument pointer → EFAULT for every command (and an unmapped pointer too)', () => {
    const { host, proc, fd } = setup();
    for (const c of COMMANDS) {
      expectErrno(proc, proc.ioctl(fd, c.request, 0n), EFAULT, c.name);
    }
    // A pointer to memory that is not mapped cannot even give up its size.
    const va = proc.mmap(4096);
    expect(proc.munmap(va, 4096)).toBe(0);
    for (const c of COMMANDS) {
      expectErrno(proc, proc.ioctl(fd, c.request, va), EFAULT, c.name);
    }
    // An argument too short to hold the size, or shorter than the size it claims.
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, new Uint8Array(2)), EFAULT, 'IOMMU_DESTROY');
    expectErrno(proc, proc.ioctl(fd, IOMMU_IOAS_ALLOC, sized(12, 8)), EFAULT, 'IOMMU_IOAS_ALLOC');
    expect(objectIds(proc, fd)).toEqual([]);
    closeClean(host, proc, fd);
  });

  it('2: number 0x7f (below the base), not a VFIO ioctl → ENOTTY', () => {
    const { host, proc, fd } = setup();
    const arg = structs.iommu_destroy.encode({ size: 8, id: 0 });
    expectErrno(proc, proc.ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), arg), ENOTTY);
    // The same argument on IOMMU_DESTROY reaches the handler, so the arg was fine.
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, arg), ENOENT, 'IOMMU_DESTROY');
    closeClean(host, proc, fd);
  });

  it('3-5: cmd_length for every command: size below the minimum → EINVAL, sizeof+1 with a nonzero byte → E2BIG, a zero extra byte → same as exact', () => {
    const host = createHost({ selftest: true });
    const proc = host.createProcess();
    for (const c of COMMANDS) {
      const fd = proc.open('/dev/iommu');
      const arg = new Uint8Array(c.size + 1);
      const dv = new DataView(arg.buffer);
      arg[c.size] = 0xff;
      dv.setUint32(0, c.min - 1, true);
      expectErrno(proc, proc.ioctl(fd, c.request, arg), EINVAL, c.name);
      dv.setUint32(0, 0, true);
      expectErrno(proc, proc.ioctl(fd, c.request, arg), EINVAL, c.name);
      dv.setUint32(0, c.size + 1, true);
      expectErrno(proc, proc.ioctl(fd, c.request, arg), E2BIG, c.name);
      // None of the refused calls created anything.
      expect(objectIds(proc, fd), c.name).toEqual([]);

      dv.setUint32(0, c.size, true);
      const exact = proc.ioctl(fd, c.request, arg);
      const exactErrno = exact < 0 ? proc.lastError()?.errno : undefined;
      dv.setUint32(0, c.size + 1, true);
      arg[c.size] = 0;
      const padded = proc.ioctl(fd, c.request, arg);
      expect(padded, c.name).toBe(exact);
      if (exact < 0) {
        expect(proc.lastError()?.errno, c.name).toBe(exactErrno);
        expect(proc.lastError()?.call, c.name).toBe(c.name);
      }
      closeClean(host, proc, fd);
    }
  });

  it('4-5: longer commands (cmd_ex_fail): a zero future u64 is accepted, a nonzero one → E2BIG, sizeof-1 → EINVAL', () => {
    const { host, proc, fd } = setup();
    const arg = sized(16, 16);
    new DataView(arg.buffer).setUint32(4, 0, true);
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, arg), ENOENT, 'IOMMU_DESTROY');
    arg[15] = 1;
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, arg), E2BIG, 'IOMMU_DESTROY');
    new DataView(arg.buffer).setUint32(0, 8, true);
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, arg), ENOENT, 'IOMMU_DESTROY');
    new DataView(arg.buffer).setUint32(0, 7, true);
    expectErrno(proc, proc.ioctl(fd, IOMMU_DESTROY, arg), EINVAL, 'IOMMU_DESTROY');

    // A page-sized all-zero tail is accepted too, and the real work happens.
    const big = sized(4096, 4096);
    const ioas = ioasAlloc(proc, fd);
    new DataView(big.buffer).setUint32(4, ioas, true);
    expect(proc.ioctl(fd, IOMMU_DESTROY, big)).toBe(0);
    expect(objectIds(proc, fd)).toEqual([]);
    closeClean(host, proc, fd);
  });

  it('6: a size between the minimum and sizeof is accepted; bytes past it are neither read nor written', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    // IOMMU_TEST_CMD: minimum 68 (offsetofend last), sizeof 72.
    const arg = structs.iommu_test_cmd.encode({
      size: 68,
      op: IOMMU_TEST_OP_MOCK_DOMAIN,
      id: ioas,
    });
    arg.fill(0xee, 68, 72); // past `size`: must not cause E2BIG nor be overwritten
    expect(proc.ioctl(fd, IOMMU_TEST_CMD, arg)).toBe(0);
    const out = structs.iommu_test_cmd.decode(arg).mock_domain;
    expect([out.out_stdev_id, out.out_idev_id, out.out_hwpt_id]).toEqual([2, 3, 4]);
    expect([...arg.subarray(68, 72)]).toEqual([0xee, 0xee, 0xee, 0xee]);
    // A size of 67 is one byte short of `last`.
    new DataView(arg.buffer).setUint32(0, 67, true);
    expectErrno(proc, proc.ioctl(fd, IOMMU_TEST_CMD, arg), EINVAL, 'IOMMU_TEST_CMD');
    expect(objectIds(proc, fd).length).toBe(4);
    closeClean(host, proc, fd);
  });

  it('7: an unused slot, or a number whose encoding differs from the registered one → ENOTTY', () => {
    const { host, proc, fd } = setup();
    const arg = sized(72, 72);
    for (const nr of [0x95, 0x9a, 0x9f]) {
      expectErrno(proc, proc.ioctl(fd, _IO(IOMMUFD_TYPE, nr), arg), ENOTTY);
    }
    // IOMMU_DESTROY's number with direction and size bits, or another type character.
    const withDir = _IOC(_IOC_READ | _IOC_WRITE, IOMMUFD_TYPE, 0x80, 8);
    expectErrno(proc, proc.ioctl(fd, withDir, structs.iommu_destroy.encode({ size: 8 })), ENOTTY);
    const otherType = _IO(0x78, 0x81);
    expectErrno(
      proc,
      proc.ioctl(fd, otherType, structs.iommu_ioas_alloc.encode({ size: 12 })),
      ENOTTY,
    );
    expect(objectIds(proc, fd)).toEqual([]);
    closeClean(host, proc, fd);
  });

  it('7: inside the table the size is read before the slot is checked: a NULL argument to an unused slot → EFAULT', () => {
    const { host, proc, fd } = setup();
    expectErrno(proc, proc.ioctl(fd, _IO(IOMMUFD_TYPE, 0x95), 0n), EFAULT);
    expectErrno(proc, proc.ioctl(fd, _IOC(_IOC_WRITE, IOMMUFD_TYPE, 0x80, 8), 0n), EFAULT);
    // Below the base it is the VFIO compatibility path: no size is read.
    expectErrno(proc, proc.ioctl(fd, _IO(IOMMUFD_TYPE, 0x7f), 0n), ENOTTY);
    closeClean(host, proc, fd);
  });

  it('IOMMU_TEST_CMD is ENOTTY on a host without selftest (with any argument)', () => {
    const { host, proc, fd } = setup({});
    const arg = structs.iommu_test_cmd.encode({ size: 72, op: IOMMU_TEST_OP_ADD_RESERVED, id: 1 });
    expectErrno(proc, proc.ioctl(fd, IOMMU_TEST_CMD, arg), ENOTTY);
    expect(proc.lastError()?.reason).toMatch(/selftest/);
    expectErrno(proc, proc.ioctl(fd, IOMMU_TEST_CMD, 0n), ENOTTY);
    // Without the test slot the table ends at 0x94, so 0x95 is not read either.
    expectErrno(proc, proc.ioctl(fd, _IO(IOMMUFD_TYPE, 0x95), 0n), ENOTTY);
    expectErrno(proc, proc.ioctl(fd, IOMMU_HW_QUEUE_ALLOC, 0n), EFAULT, 'IOMMU_HW_QUEUE_ALLOC');
    // The ordinary commands still work there.
    expect(ioasAlloc(proc, fd)).toBe(1);
    closeClean(host, proc, fd);
  });

  it('8: a lookup of an id of the wrong type → ENOENT (attach to a bad type → EINVAL)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    for (const id of [md.stdevId, md.idevId, md.hwptId]) {
      expectErrno(proc, iovaRanges(proc, fd, id).rc, ENOENT, 'IOMMU_IOAS_IOVA_RANGES');
      expectErrno(proc, map(proc, fd, id, 0n, PAGE).rc, ENOENT, 'IOMMU_IOAS_MAP');
      expectErrno(proc, unmap(proc, fd, id, 0n, U64_MAX).rc, ENOENT, 'IOMMU_IOAS_UNMAP');
      expectErrno(
        proc,
        option(proc, fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, id).rc,
        ENOENT,
        'IOMMU_OPTION',
      );
      expectErrno(proc, addReserved(proc, fd, id, 0n, PAGE), ENOENT, 'IOMMU_TEST_CMD');
    }
    // CHECK_MAP wants a paging HWPT: an IOAS id is the wrong type.
    expectErrno(proc, checkMap(proc, fd, ioas, MOCK_START, PAGE, 0n), ENOENT, 'IOMMU_TEST_CMD');
    // Attaching names a pt_id: a device or selftest object there is EINVAL, not ENOENT.
    expectErrno(proc, mockDomain(proc, fd, md.idevId).rc, EINVAL, 'IOMMU_TEST_CMD');
    expectErrno(proc, mockDomain(proc, fd, md.stdevId).rc, EINVAL, 'IOMMU_TEST_CMD');
    expect(objectIds(proc, fd).map((o) => o.id)).toEqual([1, 2, 3, 4]);
    closeClean(host, proc, fd);
  });
});

describe('2.2 IOMMU_DESTROY and object lifetime', () => {
  it('9: DESTROY of id 0 or of an unknown id → ENOENT', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    for (const id of [0, 2, 77, 0x7fffffff, 0xffffffff]) {
      expectErrno(proc, destroy(proc, fd, id), ENOENT, 'IOMMU_DESTROY');
    }
    expect(objectIds(proc, fd)).toEqual([{ id: ioas, type: 'IOAS' }]);
    // Destroying twice: the second time the id is gone.
    expect(destroy(proc, fd, ioas)).toBe(0);
    expectErrno(proc, destroy(proc, fd, ioas), ENOENT, 'IOMMU_DESTROY');
    closeClean(host, proc, fd);
  });

  it('10: DESTROY of an IOAS with areas but no HWPT or access → 0; its areas go with it', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4 * 4096);
    expect(map(proc, fd, ioas, buf, 2n * PAGE).rc).toBe(0);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(2);
    expect(destroy(proc, fd, ioas)).toBe(0);
    expect(proc.inspect(fd)?.ioas).toEqual([]);
    expectErrno(proc, iovaRanges(proc, fd, ioas).rc, ENOENT, 'IOMMU_IOAS_IOVA_RANGES');
    // The id comes back as a fresh, empty IOAS.
    expect(ioasAlloc(proc, fd)).toBe(ioas);
    expect(ioasReport(proc, fd, ioas)?.areas).toEqual([]);
    expect(map(proc, fd, ioas, buf, PAGE, 0n).rc).toBe(0);
    closeClean(host, proc, fd);
  });

  it('11: DESTROY of an IOAS while a device is attached → EBUSY, nothing changes', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    const buf = proc.mmap(2 * 4096);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, MOCK_START).rc).toBe(0);
    expectErrno(proc, destroy(proc, fd, ioas), EBUSY, 'IOMMU_DESTROY');
    expect(objectIds(proc, fd).length).toBe(4);
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(1);
    expect(checkMap(proc, fd, md.hwptId, MOCK_START, 2n * PAGE, buf)).toBe(0);
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 1)).toBe(0);
    // Once the device is gone the IOAS can go.
    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    expect(destroy(proc, fd, ioas)).toBe(0);
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 0)).toBe(0);
    closeClean(host, proc, fd);
  });

  it('12: DESTROY of an IOAS while an access object is attached → EBUSY', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const acc = createAccess(proc, fd, ioas);
    expect(acc.rc).toBe(0);
    expectErrno(proc, destroy(proc, fd, ioas), EBUSY, 'IOMMU_DESTROY');
    expect(ioasReport(proc, fd, ioas)).toBeDefined();
    // The access object is held by the driver that created it (here its fd).
    const accessId = proc.inspect(fd)?.objects.find((o) => o.type === 'ACCESS')?.id ?? 0;
    expect(accessId).toBe(2);
    expectErrno(proc, destroy(proc, fd, accessId), EBUSY, 'IOMMU_DESTROY');
    // Closing the access fd destroys the access and releases the IOAS.
    expect(proc.close(acc.accessFd)).toBe(0);
    expect(destroy(proc, fd, ioas)).toBe(0);
    expect(objectIds(proc, fd)).toEqual([]);
    closeClean(host, proc, fd);
  });

  it('13: DESTROY of a HWPT with a device attached → EBUSY', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expectErrno(proc, destroy(proc, fd, md.hwptId), EBUSY, 'IOMMU_DESTROY');
    expect(objectIds(proc, fd)).toEqual([
      { id: 1, type: 'IOAS' },
      { id: 2, type: 'SELFTEST' },
      { id: 3, type: 'DEVICE' },
      { id: 4, type: 'HWPT_PAGING' },
    ]);
    // The HWPT still maps what the IOAS maps.
    const buf = proc.mmap(4096);
    expect(map(proc, fd, ioas, buf, PAGE, MOCK_START).rc).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, MOCK_START, PAGE, buf)).toBe(0);
    closeClean(host, proc, fd);
  });

  it('20: DESTROY of an idev id (held by its binding) → EBUSY', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expectErrno(proc, destroy(proc, fd, md.idevId), EBUSY, 'IOMMU_DESTROY');
    expect(objectIds(proc, fd).map((o) => o.id)).toEqual([1, 2, 3, 4]);
    expect(iovaRanges(proc, fd, ioas).ranges).toEqual([{ start: MOCK_START, last: MOCK_LAST }]);
    closeClean(host, proc, fd);
  });

  it('21: DESTROY of the stdev detaches, unbinds and deletes the device; its auto HWPT is freed', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    const buf = proc.mmap(2 * 4096);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, MOCK_START).rc).toBe(0);
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 1)).toBe(0);
    expect(host.pinnedPages()).toBe(2);

    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    expect(objectIds(proc, fd)).toEqual([{ id: ioas, type: 'IOAS' }]);
    expectErrno(proc, destroy(proc, fd, md.hwptId), ENOENT, 'IOMMU_DESTROY');
    expectErrno(proc, destroy(proc, fd, md.idevId), ENOENT, 'IOMMU_DESTROY');
    expectErrno(proc, checkMap(proc, fd, md.hwptId, MOCK_START, PAGE, buf), ENOENT);
    // The last domain left: pages unpinned, aperture and alignment gone.
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 0)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    const r = iovaRanges(proc, fd, ioas);
    expect(r.ranges).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(r.alignment).toBe(1n);
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(1);
    expect(destroy(proc, fd, ioas)).toBe(0);
    closeClean(host, proc, fd);
  });

  it('21: with two devices on one IOAS the shared auto HWPT lives until the last stdev goes', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const a = mockDomain(proc, fd, ioas);
    const b = mockDomain(proc, fd, ioas);
    expect(b.hwptId).toBe(a.hwptId);
    expect([b.stdevId, b.idevId]).toEqual([5, 6]);
    expect(destroy(proc, fd, a.stdevId)).toBe(0);
    expectErrno(proc, destroy(proc, fd, a.hwptId), EBUSY, 'IOMMU_DESTROY');
    expect(destroy(proc, fd, b.stdevId)).toBe(0);
    expectErrno(proc, destroy(proc, fd, a.hwptId), ENOENT, 'IOMMU_DESTROY');
    expect(objectIds(proc, fd)).toEqual([{ id: ioas, type: 'IOAS' }]);
    closeClean(host, proc, fd);
  });

  it('22: ids on a fresh fd are ioas=1, stdev=2, idev=3, hwpt=4; a freed id is handed out again, lowest first', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect([ioas, md.stdevId, md.idevId, md.hwptId]).toEqual([1, 2, 3, 4]);
    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    // 2, 3 and 4 are free again; allocation takes the lowest.
    expect(ioasAlloc(proc, fd)).toBe(2);
    expect(ioasAlloc(proc, fd)).toBe(3);
    expect(ioasAlloc(proc, fd)).toBe(4);
    expect(ioasAlloc(proc, fd)).toBe(5);
    expect(destroy(proc, fd, 4)).toBe(0);
    expect(destroy(proc, fd, 2)).toBe(0);
    expect(ioasAlloc(proc, fd)).toBe(2);
    expect(ioasAlloc(proc, fd)).toBe(4);
    expect(ioasAlloc(proc, fd)).toBe(6);

    // A creation that fails gives its ids back: MOCK_DOMAIN with bad device flags.
    expect(destroy(proc, fd, 3)).toBe(0);
    const bad = mockDomain(proc, fd, 1, 0x80000000);
    expectErrno(proc, bad.rc, EINVAL, 'IOMMU_TEST_CMD');
    expect(ioasAlloc(proc, fd)).toBe(3);

    // Ids are per context: another /dev/iommu starts from 1.
    const fd2 = proc.open('/dev/iommu');
    expect(ioasAlloc(proc, fd2)).toBe(1);
    closeClean(host, proc, fd2);
    closeClean(host, proc, fd);
  });

  it('23: close(fd) with live objects destroys them all and unpins every page (CHECK_REFS 0 afterwards)', () => {
    const { host, proc, fd } = setup();
    const a = ioasAlloc(proc, fd);
    const b = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, a);
    expect(md.rc).toBe(0);
    const buf = proc.mmap(8 * 4096);
    for (let i = 0n; i < 4n; i++) {
      expect(map(proc, fd, a, buf + i * 2n * PAGE, 2n * PAGE, MOCK_START + i * 4n * PAGE).rc).toBe(
        0,
      );
    }
    expect(map(proc, fd, b, buf, 8n * PAGE).rc).toBe(0);
    const acc = createAccess(proc, fd, b);
    expect(acc.rc).toBe(0);
    expect(proc.close(acc.accessFd)).toBe(0);
    expect(checkRefs(proc, fd, buf, 8n * PAGE, 1)).toBe(0);
    expect(host.pinnedPages()).toBe(8);
    expect(proc.status().pinnedBytes).toBe(8n * PAGE);

    closeClean(host, proc, fd);
    expect(proc.status().pinnedBytes).toBe(0n);
    const fd2 = proc.open('/dev/iommu');
    expect(checkRefs(proc, fd2, buf, 8n * PAGE, 0)).toBe(0);
    expect(objectIds(proc, fd2)).toEqual([]);
    closeClean(host, proc, fd2);
  });
});

describe('2.2 lifetime: an access fd keeps its context', () => {
  it('23: closing /dev/iommu while an access fd is open keeps everything until that fd closes too', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(2 * 4096);
    const m = map(proc, fd, ioas, buf, 2n * PAGE);
    expect(m.rc).toBe(0);
    const acc = createAccess(proc, fd, ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    expect(acc.rc).toBe(0);
    const pin = structs.iommu_test_cmd.encode({
      size: 72,
      op: IOMMU_TEST_OP_ACCESS_PAGES,
      id: acc.accessFd,
      access_pages: { iova: m.iova, length: 2n * PAGE, uptr: buf },
    });
    expect(proc.ioctl(fd, IOMMU_TEST_CMD, pin)).toBe(0);
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 1)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    // The access still holds the context: its pins stay.
    expect(host.pinnedPages()).toBe(2);
    expect(proc.status().pinnedBytes).toBe(2n * PAGE);
    expect(proc.close(acc.accessFd)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.status().pinnedBytes).toBe(0n);
    expect(host.internalErrors).toBe(0);
  });
});

describe('2.3 IOMMU_IOAS_ALLOC', () => {
  it('24: flags≠0 → EOPNOTSUPP, nothing created and out_ioas_id untouched; flags 0 → out_ioas_id ≥ 1', () => {
    const { host, proc, fd } = setup();
    for (const flags of [1, 0x80000000, 0xffffffff]) {
      const b = structs.iommu_ioas_alloc.encode({ size: 12, flags, out_ioas_id: 0xdead });
      expectErrno(proc, proc.ioctl(fd, IOMMU_IOAS_ALLOC, b), EOPNOTSUPP, 'IOMMU_IOAS_ALLOC');
      expect(structs.iommu_ioas_alloc.decode(b).out_ioas_id).toBe(0xdead);
    }
    expect(objectIds(proc, fd)).toEqual([]);
    const b = structs.iommu_ioas_alloc.encode({ size: 12, out_ioas_id: 0xdead });
    expect(proc.ioctl(fd, IOMMU_IOAS_ALLOC, b)).toBe(0);
    expect(structs.iommu_ioas_alloc.decode(b).out_ioas_id).toBe(1);
    expect(objectIds(proc, fd)).toEqual([{ id: 1, type: 'IOAS' }]);
    closeClean(host, proc, fd);
  });

  it('24: when the id cannot be written back the IOAS is aborted (EFAULT) and its id reused', () => {
    const { host, proc, fd } = setup();
    // One memfd page mapped twice: writable to fill in the struct, read-only to pass it.
    const mfd = proc.memfdCreate('arg', 4096);
    const rw = proc.mmap(4096, { fd: mfd });
    const ro = proc.mmap(4096, { fd: mfd, readOnly: true });
    expect(proc.writeMemory(rw, structs.iommu_ioas_alloc.encode({ size: 12 }))).toBe(0);
    expectErrno(proc, proc.ioctl(fd, IOMMU_IOAS_ALLOC, ro), EFAULT, 'IOMMU_IOAS_ALLOC');
    expect(objectIds(proc, fd)).toEqual([]);
    // Through the writable mapping it works, with the id the failed one had.
    expect(proc.ioctl(fd, IOMMU_IOAS_ALLOC, rw)).toBe(0);
    expect(structs.iommu_ioas_alloc.decode(proc.readMemory(ro, 12) as Uint8Array).out_ioas_id).toBe(
      1,
    );
    closeClean(host, proc, fd);
  });

  it('25: a fresh IOAS accepts FIXED maps at IOVA 0', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4096);
    const got = map(proc, fd, ioas, buf, PAGE, 0n);
    expect(got).toEqual({ rc: 0, iova: 0n });
    expect(ioasReport(proc, fd, ioas)?.areas.map((a) => [a.iova, a.last])).toEqual([
      [0n, PAGE - 1n],
    ]);
    expect(unmap(proc, fd, ioas, 0n, PAGE)).toEqual({ rc: 0, length: PAGE });
    closeClean(host, proc, fd);
  });
});

describe('lastError()', () => {
  it('is null before anything fails; a failing call records its name, errno name and a reason', () => {
    const { host, proc, fd } = setup();
    expect(proc.lastError()).toBeNull();
    ioasAlloc(proc, fd);
    expect(proc.lastError()).toBeNull();

    expect(destroy(proc, fd, 77)).toBe(-ENOENT);
    const e1 = proc.lastError();
    expect(e1?.call).toBe('IOMMU_DESTROY');
    expect(e1?.errno).toBe(ENOENT);
    expect(e1?.name).toBe('ENOENT');
    expect(e1?.reason).toMatch(/77/);

    // A size failure at dispatch names the command too.
    expect(proc.ioctl(fd, IOMMU_IOAS_MAP, sized(39, 40))).toBe(-EINVAL);
    expect(proc.lastError()).toMatchObject({ call: 'IOMMU_IOAS_MAP', name: 'EINVAL' });
    expect(proc.lastError()?.reason).toMatch(/39/);

    // Failures of other system calls are recorded the same way.
    expect(proc.close(99)).toBeLessThan(0);
    expect(proc.lastError()).toMatchObject({ call: 'close', name: 'EBADF' });
    expect(proc.lastError()?.reason.length).toBeGreaterThan(0);

    // A success does not clear the last failure.
    expect(ioasAlloc(proc, fd)).toBe(2);
    expect(proc.lastError()?.call).toBe('close');
    closeClean(host, proc, fd);
  });

  it('each failing handler leaves its own call name, errno name and reason', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4096);
    expect(map(proc, fd, ioas, buf, PAGE, PAGE).rc).toBe(0);
    const cases: [() => number, string, string][] = [
      [() => map(proc, fd, ioas, buf, PAGE, PAGE).rc, 'IOMMU_IOAS_MAP', 'EEXIST'],
      [() => unmap(proc, fd, ioas, 0n, 0n).rc, 'IOMMU_IOAS_UNMAP', 'EINVAL'],
      [() => addReserved(proc, fd, ioas, PAGE, PAGE), 'IOMMU_TEST_CMD', 'EADDRINUSE'],
      [() => option(proc, fd, 9, 0, 0).rc, 'IOMMU_OPTION', 'EOPNOTSUPP'],
      [() => iovaRanges(proc, fd, 42).rc, 'IOMMU_IOAS_IOVA_RANGES', 'ENOENT'],
    ];
    for (const [call, name, errnoName] of cases) {
      const rc = call();
      const last = proc.lastError();
      expect(last?.call, name).toBe(name);
      expect(last?.name, name).toBe(errnoName);
      expect(rc, name).toBe(-(last?.errno ?? 0));
      expect(last?.reason.length, name).toBeGreaterThan(0);
    }
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(1);
    closeClean(host, proc, fd);
  });
});
