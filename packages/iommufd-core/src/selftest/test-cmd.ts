/**
 * IOMMU_TEST_CMD (selftest.c), present only on a selftest host: the mock
 * devices of MOCK_DOMAIN, checks of the mock page table and of pin counts,
 * access objects behind an fd, and the global batch-size knob. `id` means an
 * IOAS, a HWPT, a selftest object, an idev or an fd depending on the op.
 */
import { MOCK_DEVICE_FLAGS_VALID, MockPagingDomain } from '@iommufd-sim/hw-models';
import {
  EBADE,
  EBADFD,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EOVERFLOW,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_SYZ,
  MOCK_FLAGS_ACCESS_WRITE,
} from '@iommufd-sim/uapi-types';
import { AccessObject, type PinnedPiece } from '../access.js';
import { PAGE_SIZE } from '../address-space.js';
import { bindDevice, type DeviceObject } from '../device.js';
import type { Ucmd } from '../dispatch.js';
import type { HwptPagingObject } from '../hw-pagetable.js';
import { type Failure, ULONG_MAX } from '../io-pagetable.js';
import { getIoas, offsets } from '../ioas.js';
import { IommufdObject } from '../objects.js';
import {
  checkIotlb,
  dirty,
  pasidAttachOrReplace,
  pasidCheckHwpt,
  pasidDetach,
  triggerIopf,
  triggerVevent,
} from './hwpt-ops.js';

const T = offsets('iommu_test_cmd');
const PAGE = BigInt(PAGE_SIZE);
const MOCK_IO_PAGE = 2048n;
/** Largest length ACCESS_PAGES and ACCESS_RW take (a guard the kernel has against huge allocations). */
const ACCESS_MAX = 16n * 1024n * 1024n;

function at(name: string): number {
  return T[name] as number;
}

/** The selftest object of a mock device (IOMMUFD_OBJ_SELFTEST, kind IDEV). */
export class SelftestObject extends IommufdObject {
  readonly type = 'SELFTEST' as const;
  /** The bound mock device. */
  idev: DeviceObject | null = null;

  /** Detach, unbind and delete the mock device. */
  destroy(): void {
    this.idev?.unbind();
    this.idev = null;
  }
}

/** IOMMU_TEST_CMD */
export function testCmd(ucmd: Ucmd): number {
  const op = ucmd.u32(at('op'));
  switch (op) {
    case IOMMU_TEST_OP_ADD_RESERVED:
      return addReserved(ucmd);
    case IOMMU_TEST_OP_MOCK_DOMAIN:
      return mockDomain(ucmd, 0);
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
      return mockDomain(ucmd, ucmd.u32(at('mock_domain_flags.dev_flags')));
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE:
      return mockDomainReplace(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_MAP:
      return checkMap(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_REFS:
      return checkRefs(ucmd);
    case IOMMU_TEST_OP_CREATE_ACCESS:
      return createAccess(ucmd);
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES:
      return destroyAccessPages(ucmd);
    case IOMMU_TEST_OP_ACCESS_PAGES:
      return accessPages(ucmd);
    case IOMMU_TEST_OP_ACCESS_RW:
      return accessRw(ucmd);
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS:
      return accessReplaceIoas(ucmd);
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
      return setTempMemoryLimit(ucmd);
    case IOMMU_TEST_OP_DEV_CHECK_CACHE:
      return devCheckCache(ucmd);
    case IOMMU_TEST_OP_DIRTY:
      return dirty(ucmd);
    case IOMMU_TEST_OP_MD_CHECK_IOTLB:
      return checkIotlb(ucmd);
    case IOMMU_TEST_OP_TRIGGER_IOPF:
      return triggerIopf(ucmd);
    case IOMMU_TEST_OP_PASID_ATTACH:
    case IOMMU_TEST_OP_PASID_REPLACE:
      return pasidAttachOrReplace(ucmd, op);
    case IOMMU_TEST_OP_PASID_DETACH:
      return pasidDetach(ucmd);
    case IOMMU_TEST_OP_PASID_CHECK_HWPT:
      return pasidCheckHwpt(ucmd);
    case IOMMU_TEST_OP_TRIGGER_VEVENT:
      return triggerVevent(ucmd);
    default:
      return ucmd.fail(EOPNOTSUPP, `unknown IOMMU_TEST_CMD op ${op}`);
  }
}

function addReserved(ucmd: Ucmd): number {
  const id = ucmd.u32(at('id'));
  const ioas = getIoas(ucmd.ctx, id);
  if (ioas === undefined) return ucmd.fail(ENOENT, `there is no IOAS ${id}`);
  const start = ucmd.u64(at('add_reserved.start'));
  const length = ucmd.u64(at('add_reserved.length'));
  if (length === 0n) return ucmd.fail(EINVAL, 'length is 0');
  const last = start + length - 1n;
  if (last > ULONG_MAX) return ucmd.fail(EOVERFLOW, 'start + length wraps past 2^64');
  const bad = ioas.iopt.reserve(start, last, null);
  return bad === undefined ? 0 : ucmd.fail(bad.errno, bad.reason);
}

function mockDomain(ucmd: Ucmd, devFlags: number): number {
  const ctx = ucmd.ctx;
  const host = ctx.host;
  const ptId = ucmd.u32(at('id'));
  // The selftest object takes its id first, then the idev, then the HWPT.
  const sobj = new SelftestObject();
  const full = ctx.objects.allocate(sobj);
  if (full !== undefined) return ucmd.fail(full.errno, full.reason);
  if ((devFlags & ~MOCK_DEVICE_FLAGS_VALID) !== 0) {
    ctx.objects.abort(sobj);
    return ucmd.fail(EINVAL, `unknown mock device flags 0x${devFlags.toString(16)}`);
  }
  const hostDevice = host.createMockDevice(devFlags);
  const idev = bindDevice(ctx, hostDevice, false);
  if ('errno' in idev) {
    ctx.objects.abort(sobj);
    return ucmd.fail(idev.errno, idev.reason);
  }
  sobj.idev = idev;
  const hwpt = idev.attach(ptId);
  if ('errno' in hwpt) {
    ctx.objects.abort(sobj);
    return ucmd.fail(hwpt.errno, hwpt.reason);
  }
  ucmd.setU32(at('mock_domain.out_stdev_id'), sobj.id);
  ucmd.setU32(at('mock_domain.out_hwpt_id'), hwpt.id);
  ucmd.setU32(at('mock_domain.out_idev_id'), idev.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ctx.objects.abort(sobj);
    return rc;
  }
  ctx.objects.finalize(sobj);
  return 0;
}

function selftestObject(ucmd: Ucmd, id: number): SelftestObject | number {
  const obj = ucmd.ctx.objects.get(id, 'SELFTEST');
  if (obj === undefined) return ucmd.fail(ENOENT, `there is no selftest object ${id}`);
  return obj as SelftestObject;
}

function mockDomainReplace(ucmd: Ucmd): number {
  const sobj = selftestObject(ucmd, ucmd.u32(at('id')));
  if (typeof sobj === 'number') return sobj;
  const idev = sobj.idev as DeviceObject;
  const got = idev.replace(ucmd.u32(at('mock_domain_replace.pt_id')));
  if ('errno' in got) return ucmd.fail(got.errno, got.reason);
  ucmd.setU32(at('mock_domain_replace.pt_id'), got.id);
  return ucmd.respond();
}

function checkMap(ucmd: Ucmd): number {
  const iova = ucmd.u64(at('check_map.iova'));
  const length = ucmd.u64(at('check_map.length'));
  const uptr = ucmd.u64(at('check_map.uptr'));
  if (
    iova % MOCK_IO_PAGE !== 0n ||
    length % MOCK_IO_PAGE !== 0n ||
    uptr % MOCK_IO_PAGE !== 0n ||
    uptr + length > ULONG_MAX
  ) {
    return ucmd.fail(EINVAL, 'iova, length and uptr must be multiples of 2048 and must not wrap');
  }
  const id = ucmd.u32(at('id'));
  const hwpt = ucmd.ctx.objects.get(id, 'HWPT_PAGING') as HwptPagingObject | undefined;
  if (hwpt === undefined) return ucmd.fail(ENOENT, `there is no paging HWPT ${id}`);
  const domain = hwpt.domain;
  if (!(domain instanceof MockPagingDomain)) {
    return ucmd.fail(EINVAL, `HWPT ${id} is not a mock domain`);
  }
  const table = domain.pageTable;
  for (let off = 0n; off < length; off += MOCK_IO_PAGE) {
    const va = uptr + off;
    const vma = ucmd.proc.space.find(Number(va));
    if (vma === undefined) return ucmd.fail(EFAULT, `uptr + 0x${off.toString(16)} is not mapped`);
    const cpuPa = vma.backing.basePa + vma.backingPage * PAGE_SIZE + (Number(va) - vma.start);
    const ioPa = table.physicalAddress(Number(iova + off));
    if (ioPa !== cpuPa) {
      return ucmd.fail(
        EINVAL,
        `IOVA 0x${(iova + off).toString(16)} maps ${ioPa < 0 ? 'nothing' : `PA 0x${ioPa.toString(16)}`}, but the CPU's page is at PA 0x${cpuPa.toString(16)}`,
      );
    }
  }
  return 0;
}

function checkRefs(ucmd: Ucmd): number {
  const length = ucmd.u64(at('check_refs.length'));
  const uptr = ucmd.u64(at('check_refs.uptr'));
  const refs = ucmd.u32(at('check_refs.refs'));
  if (length % PAGE !== 0n || uptr % PAGE !== 0n || uptr + length > ULONG_MAX) {
    return ucmd.fail(EINVAL, 'uptr and length must be page aligned');
  }
  for (let off = 0n; off < length; off += PAGE) {
    const va = Number(uptr + off);
    const vma = Number.isSafeInteger(va) ? ucmd.proc.space.find(va) : undefined;
    if (vma === undefined) return ucmd.fail(EFAULT, `uptr + 0x${off.toString(16)} is not mapped`);
    const page = vma.backingPage + (va - vma.start) / PAGE_SIZE;
    const count = vma.backing.pinCount(page);
    if (count !== refs) {
      return ucmd.fail(
        EIO,
        `the page at 0x${va.toString(16)} is pinned ${count} time${count === 1 ? '' : 's'}, expected ${refs}`,
      );
    }
  }
  return 0;
}

function createAccess(ucmd: Ucmd): number {
  const flags = ucmd.u32(at('create_access.flags'));
  if ((flags & ~MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown access flags 0x${flags.toString(16)}`);
  }
  const ctx = ucmd.ctx;
  const access = new AccessObject(ctx, (flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) !== 0);
  const full = ctx.objects.allocate(access);
  if (full !== undefined) {
    ctx.release();
    return ucmd.fail(full.errno, full.reason);
  }
  ctx.objects.finalize(access);
  const bad = access.attachIoas(ucmd.u32(at('id')));
  if (bad !== undefined) {
    access.closeFile();
    return ucmd.fail(bad.errno, bad.reason);
  }
  const fd = ucmd.proc.install({ kind: 'access', access, refs: 1 });
  ucmd.setU32(at('create_access.out_access_fd'), fd);
  const rc = ucmd.respond();
  if (rc !== 0) ucmd.proc.close(fd);
  return rc;
}

function accessOf(ucmd: Ucmd): AccessObject | number {
  const fd = ucmd.u32(at('id'));
  const f = ucmd.proc.fileOf(fd);
  if (f === undefined || f.kind !== 'access') {
    return ucmd.fail(EBADFD, `fd ${fd} is not an access fd from IOMMU_TEST_OP_CREATE_ACCESS`);
  }
  return f.access;
}

function destroyAccessPages(ucmd: Ucmd): number {
  const access = accessOf(ucmd);
  if (typeof access === 'number') return access;
  const item = ucmd.u32(at('destroy_access_pages.access_pages_id'));
  if (!access.unpinItem(item)) {
    return ucmd.fail(
      ENOENT,
      `the access has no pinned item ${item} (an unmap may have dropped it)`,
    );
  }
  return 0;
}

function accessPages(ucmd: Ucmd): number {
  // selftest.c checks the size guard before the flags and the fd.
  const length = ucmd.u64(at('access_pages.length'));
  if (length > ACCESS_MAX) return ucmd.fail(ENOMEM, 'length is over 16 MiB');
  const flags = ucmd.u32(at('access_pages.flags'));
  if ((flags & ~(MOCK_FLAGS_ACCESS_WRITE | MOCK_FLAGS_ACCESS_SYZ)) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flags 0x${flags.toString(16)}`);
  }
  const access = accessOf(ucmd);
  if (typeof access === 'number') return access;
  if (!access.needsPinPages) {
    return ucmd.fail(EOPNOTSUPP, 'the access was created without NEEDS_PIN_PAGES');
  }
  const iova = ucmd.u64(at('access_pages.iova'));
  const uptr = ucmd.u64(at('access_pages.uptr'));
  // The pinned pages must be the user's pages at uptr (skipped when uptr is 0).
  const matchesUptr = (pieces: readonly PinnedPiece[]): Failure | undefined => {
    let index = 0;
    for (const piece of pieces) {
      const pages = piece.area.pages;
      for (let i = piece.first; i <= piece.last; i++, index++) {
        const va = Number(uptr) + index * PAGE_SIZE;
        const vma = ucmd.proc.space.find(va);
        const cpuPa =
          vma === undefined
            ? -1
            : vma.backing.basePa + vma.backingPage * PAGE_SIZE + (va - vma.start);
        if (pages === null || pages.paOf(i) !== cpuPa) {
          return vma === undefined
            ? { errno: EFAULT, reason: `uptr page ${index} is not mapped` }
            : { errno: EBADE, reason: `pinned page ${index} is not the user's page at uptr` };
        }
      }
    }
    return undefined;
  };
  const item = access.pin(
    iova,
    length,
    (flags & MOCK_FLAGS_ACCESS_WRITE) !== 0,
    uptr === 0n ? undefined : matchesUptr,
  );
  if ('errno' in item) return ucmd.fail(item.errno, item.reason);
  ucmd.setU32(at('access_pages.out_access_pages_id'), item.id);
  const rc = ucmd.respond();
  if (rc !== 0) access.unpinItem(item.id);
  return rc;
}

function accessRw(ucmd: Ucmd): number {
  // selftest.c checks the size guard before the flags and the fd.
  const length = ucmd.u64(at('access_rw.length'));
  if (length > ACCESS_MAX) return ucmd.fail(ENOMEM, 'length is over 16 MiB');
  const flags = ucmd.u32(at('access_rw.flags'));
  if ((flags & ~(MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH | MOCK_FLAGS_ACCESS_SYZ)) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flags 0x${flags.toString(16)}`);
  }
  const access = accessOf(ucmd);
  if (typeof access === 'number') return access;
  const iova = ucmd.u64(at('access_rw.iova'));
  const uptr = ucmd.u64(at('access_rw.uptr'));
  const buffer = new Uint8Array(Number(length));
  const write = (flags & MOCK_ACCESS_RW_WRITE) !== 0;
  if (write && !ucmd.proc.copyFromUser(uptr, buffer)) {
    return ucmd.fail(EFAULT, 'the user buffer cannot be read');
  }
  const bad = access.rw(iova, buffer, write);
  if (bad !== undefined) return ucmd.fail(bad.errno, bad.reason);
  if (!write && !ucmd.proc.copyToUser(uptr, buffer)) {
    return ucmd.fail(EFAULT, 'the user buffer cannot be written');
  }
  return 0;
}

function accessReplaceIoas(ucmd: Ucmd): number {
  const access = accessOf(ucmd);
  if (typeof access === 'number') return access;
  if (access.ioas === null) return ucmd.fail(ENOENT, 'the access has no IOAS to replace');
  const bad = access.attachIoas(ucmd.u32(at('access_replace_ioas.ioas_id')));
  return bad === undefined ? 0 : ucmd.fail(bad.errno, bad.reason);
}

function setTempMemoryLimit(ucmd: Ucmd): number {
  const limit = ucmd.u32(at('memory_limit.limit'));
  if (limit < 12) return ucmd.fail(EINVAL, `limit ${limit} is below 12 bytes`);
  ucmd.ctx.host.tempMemoryLimit = limit;
  return 0;
}

function devCheckCache(ucmd: Ucmd): number {
  const id = ucmd.u32(at('id'));
  const idev = ucmd.ctx.objects.get(id, 'DEVICE') as DeviceObject | undefined;
  if (idev === undefined) return ucmd.fail(ENOENT, `there is no device ${id}`);
  const mock = ucmd.ctx.host.mockIommu;
  const word = ucmd.u32(at('check_dev_cache.id'));
  const value = ucmd.u32(at('check_dev_cache.cache'));
  if (mock === null || idev.hostDevice.iommu !== mock) {
    return ucmd.fail(EINVAL, `device ${id} is not a mock device`);
  }
  const rc = mock.checkDeviceCache(idev.hostDevice.device, word, value);
  if (rc !== 0) {
    return ucmd.fail(
      EINVAL,
      word > 3
        ? `cache word ${word} does not exist (0..3)`
        : `cache word ${word} is 0x${(mock.deviceCacheWords(idev.hostDevice.device)[word] ?? 0).toString(16)}, not 0x${value.toString(16)}`,
    );
  }
  return 0;
}
