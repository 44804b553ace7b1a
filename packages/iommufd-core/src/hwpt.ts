/**
 * The HWPT ioctls (hw_pagetable.c, device.c, io_pagetable.c):
 * IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO, IOMMU_HWPT_SET_DIRTY_TRACKING,
 * IOMMU_HWPT_GET_DIRTY_BITMAP and IOMMU_HWPT_INVALIDATE, each checking in
 * the kernel's order so the first errno is the kernel's. Vendor data and
 * invalidation entries are copied with the kernel's user-data rules: the
 * driver's type first, then the length against the struct (too short or
 * too long is EINVAL), then the copy (EFAULT).
 */
import type { IommuDomain, IommuModel } from '@iommufd-sim/hw-models';
import { MockIommu, type VtdDomain } from '@iommufd-sim/hw-models';
import {
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  EOVERFLOW,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_VTD_INV_FLAGS_LEAF,
  structs,
} from '@iommufd-sim/uapi-types';
import type { DeviceObject } from './device.js';
import type { Ucmd } from './dispatch.js';
import type { FaultObject } from './fault.js';
import {
  allocHwptNested,
  allocHwptOnViommu,
  allocHwptPaging,
  type HwptObject,
  type HwptPagingObject,
  nestParentProblem,
} from './hw-pagetable.js';
import { type Failure, type IoPagetable, ULONG_MAX } from './io-pagetable.js';
import { type IoasObject, offsets } from './ioas.js';
import type { ObjectType } from './objects.js';
import { copyUserStruct, userArray, userData } from './user-data.js';
import type { ViommuObject } from './viommu.js';

function failWith(ucmd: Ucmd, f: Failure): number {
  return ucmd.fail(f.errno, f.reason);
}

/** iommufd_get_object of one type: the live object, or ENOENT saying what `id` is instead. */
export function getTyped<T>(ucmd: Ucmd, id: number, type: ObjectType, what: string): T | number {
  const obj = ucmd.ctx.objects.get(id, type);
  if (obj !== undefined) return obj as T;
  const other = ucmd.ctx.objects.get(id);
  return ucmd.fail(
    ENOENT,
    other === undefined
      ? `there is no object ${id}`
      : `object ${id} is a ${other.type}, not ${what}`,
  );
}

/** iommufd_get_device. */
export function getDevice(ucmd: Ucmd, id: number): DeviceObject | number {
  return getTyped<DeviceObject>(ucmd, id, 'DEVICE', 'a device');
}

// ---- vendor data -----------------------------------------------------------------

/** A driver's user struct: its data type, size and first-version size. */
interface VendorStruct {
  readonly type: number;
  readonly size: number;
  readonly minSize: number;
  readonly name: string;
}

/** The stage-1 data each driver's domain_alloc_nested takes in 6.17 (absent: no such op). */
const NESTED_DATA: Partial<Record<IommuModel, VendorStruct>> = {
  mock: {
    type: IOMMU_HWPT_DATA_SELFTEST,
    size: structs.iommu_hwpt_selftest.sizeof,
    minSize: structs.iommu_hwpt_selftest.sizeof,
    name: 'iommu_hwpt_selftest',
  },
  vtd: {
    type: IOMMU_HWPT_DATA_VTD_S1,
    size: structs.iommu_hwpt_vtd_s1.sizeof,
    minSize: structs.iommu_hwpt_vtd_s1.sizeof,
    name: 'iommu_hwpt_vtd_s1',
  },
};

/** The invalidation entry each driver's cache_invalidate_user takes (absent: no such op). */
const INVALIDATE_DATA: Partial<Record<IommuModel, VendorStruct>> = {
  mock: {
    type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
    size: structs.iommu_hwpt_invalidate_selftest.sizeof,
    minSize: structs.iommu_hwpt_invalidate_selftest.sizeof,
    name: 'iommu_hwpt_invalidate_selftest',
  },
  vtd: {
    type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    size: structs.iommu_hwpt_vtd_s1_invalidate.sizeof,
    minSize: structs.iommu_hwpt_vtd_s1_invalidate.sizeof,
    name: 'iommu_hwpt_vtd_s1_invalidate',
  },
};

/**
 * __iommu_copy_struct_from_user: `len` bytes at `uptr` into a zeroed struct of
 * `s.size` bytes. The type was checked by the caller (drivers check it first).
 */
function copyVendorStruct(
  ucmd: Ucmd,
  s: VendorStruct,
  uptr: bigint,
  len: number,
): Uint8Array | Failure {
  return copyUserStruct(ucmd.proc, s.name, s.size, s.minSize, uptr, len);
}

// ---- IOMMU_HWPT_ALLOC ------------------------------------------------------------

const ALLOC = offsets('iommu_hwpt_alloc');
const PAGING_FLAGS =
  IOMMU_HWPT_ALLOC_NEST_PARENT |
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
  IOMMU_HWPT_FAULT_ID_VALID |
  IOMMU_HWPT_ALLOC_PASID;
const NESTED_FLAGS = IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID;

/** IOMMU_HWPT_ALLOC: a paging HWPT on an IOAS, or a nested HWPT on a NEST_PARENT HWPT. */
export function hwptAlloc(ucmd: Ucmd): number {
  const ctx = ucmd.ctx;
  const flags = ucmd.u32(ALLOC.flags as number);
  const dataType = ucmd.u32(ALLOC.data_type as number);
  const dataLen = ucmd.u32(ALLOC.data_len as number);
  if (ucmd.u32(ALLOC.__reserved as number) !== 0) {
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  }
  if ((dataType === IOMMU_HWPT_DATA_NONE) !== (dataLen === 0)) {
    return ucmd.fail(
      EINVAL,
      dataType === IOMMU_HWPT_DATA_NONE
        ? `data_type NONE takes no data, but data_len is ${dataLen}`
        : `data_type ${dataType} needs data, but data_len is 0`,
    );
  }
  const idev = getDevice(ucmd, ucmd.u32(ALLOC.dev_id as number));
  if (typeof idev === 'number') return idev;
  const ptId = ucmd.u32(ALLOC.pt_id as number);
  const pt = ctx.objects.get(ptId);
  if (pt === undefined) return ucmd.fail(EINVAL, `pt_id ${ptId} is not an object`);
  const iopf = (flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0;
  let made: HwptObject | Failure;
  if (pt.type === 'IOAS') {
    made = allocPagingForUser(ucmd, pt as IoasObject, idev, flags, dataLen);
  } else if (pt.type === 'HWPT_PAGING') {
    made = allocNestedForUser(ucmd, pt as HwptPagingObject, idev, flags, dataType, dataLen);
  } else if (pt.type === 'VIOMMU') {
    made = allocOnViommu(ucmd, pt as ViommuObject, idev, flags, dataType, dataLen);
  } else {
    return ucmd.fail(
      EINVAL,
      `pt_id ${ptId} is a ${pt.type}; a HWPT is allocated on an IOAS, a NEST_PARENT HWPT or a vIOMMU`,
    );
  }
  if ('errno' in made) return failWith(ucmd, made);
  const hwpt = made;
  if (iopf) {
    const faultId = ucmd.u32(ALLOC.fault_id as number);
    const fault = ctx.objects.get(faultId, 'FAULT') as FaultObject | undefined;
    if (fault === undefined) {
      ctx.objects.abort(hwpt);
      return ucmd.fail(ENOENT, `there is no FAULT object ${faultId}`);
    }
    hwpt.setFault(fault);
  }
  ucmd.setU32(ALLOC.out_hwpt_id as number, hwpt.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ctx.objects.abort(hwpt);
    return rc;
  }
  ctx.objects.finalize(hwpt);
  return 0;
}

/** iommufd_hwpt_paging_alloc for IOMMU_HWPT_ALLOC (no immediate attach). */
function allocPagingForUser(
  ucmd: Ucmd,
  ioas: IoasObject,
  idev: DeviceObject,
  flags: number,
  dataLen: number,
): HwptPagingObject | Failure {
  if ((flags & ~PAGING_FLAGS) !== 0) {
    return { errno: EOPNOTSUPP, reason: `unknown HWPT_ALLOC flags 0x${flags.toString(16)}` };
  }
  const { iommu, device } = idev.hostDevice;
  if (
    (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 &&
    (iommu.hwInfo(device).capabilities & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)) === 0n
  ) {
    return {
      errno: EOPNOTSUPP,
      reason: `${idev.hostDevice.name} has no dirty-tracking capability (IOMMU_CAP_DIRTY_TRACKING)`,
    };
  }
  if ((flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0 && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0) {
    return { errno: EOPNOTSUPP, reason: 'a NEST_PARENT HWPT cannot take a fault object' };
  }
  if (dataLen !== 0) {
    // Every 6.17 driver's domain_alloc_paging_flags refuses user data (the kernel's
    // object is allocated and aborted around it, which leaves no trace).
    return { errno: EOPNOTSUPP, reason: `${iommu.name}: a paging domain takes no user data` };
  }
  return allocHwptPaging(ucmd.ctx, ioas, idev, {
    auto: false,
    nestParent: (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0,
    dirtyTracking: (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0,
    pasid: (flags & IOMMU_HWPT_ALLOC_PASID) !== 0,
    iopf: (flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0,
  });
}

/** iommufd_hwpt_nested_alloc. */
function allocNestedForUser(
  ucmd: Ucmd,
  parent: HwptPagingObject,
  idev: DeviceObject,
  flags: number,
  dataType: number,
  dataLen: number,
): HwptObject | Failure {
  const { iommu } = idev.hostDevice;
  const vendor = NESTED_DATA[iommu.model];
  if ((flags & ~NESTED_FLAGS) !== 0) {
    return { errno: EOPNOTSUPP, reason: `flags 0x${flags.toString(16)} are not for a nested HWPT` };
  }
  if (dataLen === 0) return { errno: EOPNOTSUPP, reason: 'a nested HWPT needs vendor data' };
  if (vendor === undefined) {
    return {
      errno: EOPNOTSUPP,
      reason:
        iommu.model === 'smmuv3'
          ? `${iommu.name}: SMMUv3 nested HWPTs are allocated on a vIOMMU (IOMMU_VIOMMU_ALLOC), not on a HWPT`
          : `${iommu.name}: the ${iommu.model} driver has no nested domains in 6.17`,
    };
  }
  const pasid = (flags & IOMMU_HWPT_ALLOC_PASID) !== 0;
  const iopf = (flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0;
  // The core checks the parent before the driver sees the data.
  const probe = nestParentProblem(parent, iommu.model);
  if (probe !== undefined) return probe;
  let data: Uint8Array;
  if (dataType !== vendor.type) {
    data = new Uint8Array(0); // the driver refuses the type before reading anything
  } else {
    const got = copyVendorStruct(ucmd, vendor, ucmd.u64(ALLOC.data_uptr as number), dataLen);
    if ('errno' in got) return got;
    data = got;
  }
  return allocHwptNested(ucmd.ctx, parent, idev, { pasid, iopf, dataType, data });
}

/** iommufd_viommu_alloc_hwpt_nested (the device must be behind the vIOMMU's IOMMU). */
function allocOnViommu(
  ucmd: Ucmd,
  viommu: ViommuObject,
  idev: DeviceObject,
  flags: number,
  dataType: number,
  dataLen: number,
): HwptObject | Failure {
  const { iommu, name } = idev.hostDevice;
  if (iommu !== viommu.driver.iommu) {
    return {
      errno: EINVAL,
      reason: `${name} is behind ${iommu.name}; vIOMMU ${viommu.id} is a slice of ${viommu.driver.iommu.name}`,
    };
  }
  if ((flags & ~NESTED_FLAGS) !== 0) {
    return {
      errno: EOPNOTSUPP,
      reason: `flags 0x${flags.toString(16)}: a HWPT on a vIOMMU takes only FAULT_ID_VALID and ALLOC_PASID`,
    };
  }
  if (dataLen === 0) return { errno: EOPNOTSUPP, reason: 'a nested HWPT needs vendor data' };
  const data = userData(
    ucmd.proc,
    VIOMMU_NESTED_DATA_NAMES.get(dataType) ?? `data type ${dataType}`,
    dataType,
    ucmd.u64(ALLOC.data_uptr as number),
    dataLen,
  );
  return allocHwptOnViommu(
    ucmd.ctx,
    viommu,
    flags & ~IOMMU_HWPT_FAULT_ID_VALID,
    (flags & IOMMU_HWPT_ALLOC_PASID) !== 0,
    data,
  );
}

const VIOMMU_NESTED_DATA_NAMES = new Map<number, string>([
  [IOMMU_HWPT_DATA_SELFTEST, 'iommu_hwpt_selftest'],
  [IOMMU_HWPT_DATA_ARM_SMMUV3, 'iommu_hwpt_arm_smmuv3'],
]);

// ---- IOMMU_GET_HW_INFO -------------------------------------------------------------

const INFO = offsets('iommu_hw_info');
const CLEAR_CHUNK = new Uint8Array(65536);

/** IOMMU_GET_HW_INFO: the device's IOMMU type and vendor data, capabilities and PASID width. */
export function getHwInfo(ucmd: Ucmd): number {
  const flags = ucmd.u32(INFO.flags as number);
  if ((flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flags 0x${flags.toString(16)}`);
  }
  const r = INFO.__reserved as number;
  if (ucmd.bytes[r] !== 0 || ucmd.bytes[r + 1] !== 0 || ucmd.bytes[r + 2] !== 0) {
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  }
  const inType =
    (flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0
      ? ucmd.u32(INFO.in_data_type as number)
      : IOMMU_HW_INFO_TYPE_DEFAULT;
  const idev = getDevice(ucmd, ucmd.u32(INFO.dev_id as number));
  if (typeof idev === 'number') return idev;
  const { iommu, device } = idev.hostDevice;
  let info = iommu.hwInfo(device);
  // arm_smmu_hw_info: another type goes to the implementation (a Tegra241 CMDQV's own info).
  const cmdqv = ucmd.ctx.host.cmdqvOf(iommu);
  if (cmdqv !== undefined && inType === IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV) {
    info = { ...info, type: IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV, data: cmdqv.hwInfo() };
  }
  // A driver with hw_info accepts DEFAULT or its own type; one without ignores the input.
  if (
    info.type !== IOMMU_HW_INFO_TYPE_NONE &&
    inType !== IOMMU_HW_INFO_TYPE_DEFAULT &&
    inType !== info.type
  ) {
    return ucmd.fail(
      EOPNOTSUPP,
      `${iommu.name} reports hw_info type 0x${info.type.toString(16)}, not 0x${inType.toString(16)}`,
    );
  }
  const userLen = ucmd.u32(INFO.data_len as number);
  const uptr = ucmd.u64(INFO.data_uptr as number);
  const copyLen = Math.min(userLen, info.data.length);
  if (copyLen > 0 && !ucmd.proc.copyToUser(uptr, info.data.subarray(0, copyLen))) {
    return ucmd.fail(EFAULT, `data_uptr 0x${uptr.toString(16)} cannot take ${copyLen} bytes`);
  }
  // The user's buffer past the kernel's data is cleared.
  for (let at = copyLen; at < userLen; at += CLEAR_CHUNK.length) {
    const n = Math.min(CLEAR_CHUNK.length, userLen - at);
    if (!ucmd.proc.copyToUser(uptr + BigInt(at), CLEAR_CHUNK.subarray(0, n))) {
      return ucmd.fail(EFAULT, `data_uptr + ${at} cannot be cleared`);
    }
  }
  ucmd.setU32(INFO.data_len as number, info.data.length);
  ucmd.setU32(INFO.out_data_type as number, info.type);
  ucmd.setU64(INFO.out_capabilities as number, info.capabilities);
  ucmd.bytes[INFO.out_max_pasid_log2 as number] = info.maxPasidLog2;
  return ucmd.respond();
}

// ---- dirty tracking ---------------------------------------------------------------

const SET_DIRTY = offsets('iommu_hwpt_set_dirty_tracking');
const GET_DIRTY = offsets('iommu_hwpt_get_dirty_bitmap');

/** iommufd_get_hwpt_paging. */
export function getHwptPaging(ucmd: Ucmd, id: number): HwptPagingObject | number {
  return getTyped<HwptPagingObject>(ucmd, id, 'HWPT_PAGING', 'a paging HWPT');
}

/** IOMMU_HWPT_SET_DIRTY_TRACKING: turn tracking on (clearing old dirty bits first) or off. */
export function setDirtyTracking(ucmd: Ucmd): number {
  const flags = ucmd.u32(SET_DIRTY.flags as number);
  if ((flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flags 0x${flags.toString(16)}`);
  }
  const hwpt = getHwptPaging(ucmd, ucmd.u32(SET_DIRTY.hwpt_id as number));
  if (typeof hwpt === 'number') return hwpt;
  const domain = hwpt.domain as IommuDomain;
  if (!domain.dirtyCapable) {
    return ucmd.fail(
      EOPNOTSUPP,
      `HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING`,
    );
  }
  const enable = (flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0;
  const rc = domain.setDirtyTracking(enable);
  if (rc < 0) return ucmd.fail(-rc, `${domain.iommu.name} refused to change dirty tracking`);
  if (enable) {
    // A clean snapshot: bits left from an earlier tracking period are dropped.
    for (const area of hwpt.ioas.iopt.areas()) {
      if (area.pages === null || area.iova > MAX_NUMBER) continue;
      const from = Number(area.iova);
      const length = Number(area.last - area.iova) + 1;
      domain.readAndClearDirty(from, length, {
        baseIova: from,
        pageSize: 1 << 30,
        bits: SCRATCH_BITS,
      });
    }
  }
  return 0;
}

const MAX_NUMBER = BigInt(Number.MAX_SAFE_INTEGER);
const SCRATCH_BITS = new Uint8Array(0);

/**
 * IOMMU_HWPT_GET_DIRTY_BITMAP: for each `page_size` unit of [iova,
 * iova+length) that a dirty IOPTE covers, set its bit in the user's bitmap
 * (other bits are left as they are), clearing the IOPTEs' dirty bits unless
 * NO_CLEAR. The walk stops at the first hole or driver error, and the call
 * still returns 0, as 6.17 ignores the walk's result.
 */
export function getDirtyBitmap(ucmd: Ucmd): number {
  const flags = ucmd.u32(GET_DIRTY.flags as number);
  if ((flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0) {
    return ucmd.fail(EOPNOTSUPP, `unknown flags 0x${flags.toString(16)}`);
  }
  if (ucmd.u32(GET_DIRTY.__reserved as number) !== 0) {
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  }
  const hwpt = getHwptPaging(ucmd, ucmd.u32(GET_DIRTY.hwpt_id as number));
  if (typeof hwpt === 'number') return hwpt;
  const iova = ucmd.u64(GET_DIRTY.iova as number);
  const length = ucmd.u64(GET_DIRTY.length as number);
  const pageSize = ucmd.u64(GET_DIRTY.page_size as number);
  const iopt = hwpt.ioas.iopt;
  // iommufd_check_iova_range
  const last = iova + BigInt.asUintN(64, length - 1n);
  if (last > ULONG_MAX) return ucmd.fail(EOVERFLOW, 'iova + length wraps past 2^64');
  const align = BigInt(iopt.iovaAlignment) - 1n;
  if ((iova & align) !== 0n || (BigInt.asUintN(64, last + 1n) & align) !== 0n) {
    return ucmd.fail(
      EINVAL,
      `iova and iova + length must be multiples of the IOAS alignment ${iopt.iovaAlignment}`,
    );
  }
  if (pageSize === 0n) return ucmd.fail(EINVAL, 'page_size is 0');
  if ((iova & (pageSize - 1n)) !== 0n || (BigInt.asUintN(64, last + 1n) & (pageSize - 1n)) !== 0n) {
    return ucmd.fail(EINVAL, `iova and iova + length must be multiples of page_size ${pageSize}`);
  }
  const domain = hwpt.domain as IommuDomain;
  if (!domain.dirtyCapable) {
    return ucmd.fail(
      EOPNOTSUPP,
      `HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING`,
    );
  }
  if (length === 0n) return 0;
  harvest(ucmd, iopt, domain, iova, last, pageSize, ucmd.u64(GET_DIRTY.data as number), flags);
  return 0;
}

/** The bitmap walk of getDirtyBitmap; errors end it silently, as in the kernel. */
function harvest(
  ucmd: Ucmd,
  iopt: IoPagetable,
  domain: IommuDomain,
  iova: bigint,
  last: bigint,
  pageSize: bigint,
  data: bigint,
  flags: number,
): void {
  // iova_bitmap works in units of 2^ffs(page_size).
  let shift = 0n;
  while (((pageSize >> shift) & 1n) === 0n) shift++;
  const unit = 1n << shift;
  const noClear = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
  iopt.forEachContig(iova, last, (_area, cur, end) => {
    if (end > MAX_NUMBER) return false;
    // Bits for [cur, end], starting on a byte boundary of the user's bitmap.
    const firstBit = (cur - iova) >> shift;
    const lastBit = (end - iova) >> shift;
    const byte0 = firstBit >> 3n;
    const nbytes = Number((lastBit >> 3n) - byte0) + 1;
    const baseIova = iova + ((byte0 * 8n) << shift);
    const bits = new Uint8Array(nbytes);
    const rc = domain.readAndClearDirty(
      Number(cur),
      Number(end - cur) + 1,
      { baseIova: Number(baseIova), pageSize: Number(unit), bits },
      noClear,
    );
    if (rc < 0) return false;
    return orIntoUser(ucmd, data + byte0, bits);
  });
}

/** Set the bits of `bits` in the user's bitmap at `uptr` (read, OR, write back). */
function orIntoUser(ucmd: Ucmd, uptr: bigint, bits: Uint8Array): boolean {
  let any = false;
  for (let i = 0; i < bits.length; i++) {
    if (bits[i] !== 0) {
      any = true;
      break;
    }
  }
  if (!any) return true;
  const cur = new Uint8Array(bits.length);
  if (!ucmd.proc.copyFromUser(uptr, cur)) return false;
  for (let i = 0; i < bits.length; i++) cur[i] = (cur[i] as number) | (bits[i] as number);
  return ucmd.proc.copyToUser(uptr, cur);
}

// ---- IOMMU_HWPT_INVALIDATE -------------------------------------------------------

const INV = offsets('iommu_hwpt_invalidate');

/**
 * IOMMU_HWPT_INVALIDATE on a nested HWPT: the driver's cache invalidation
 * for each entry, stopping at the first bad one; entry_num is written back
 * with the number handled, on success and on error.
 */
export function hwptInvalidate(ucmd: Ucmd): number {
  const entryNum = ucmd.u32(INV.entry_num as number);
  const entryLen = ucmd.u32(INV.entry_len as number);
  const uptr = ucmd.u64(INV.data_uptr as number);
  const dataType = ucmd.u32(INV.data_type as number);
  let done = 0;
  let rc = 0;
  if (ucmd.u32(INV.__reserved as number) !== 0) {
    rc = ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  } else if (entryNum !== 0 && (uptr === 0n || entryLen === 0)) {
    rc = ucmd.fail(EINVAL, 'entry_num is not 0, but data_uptr or entry_len is');
  } else {
    const id = ucmd.u32(INV.hwpt_id as number);
    const obj = ucmd.ctx.objects.get(id);
    if (obj === undefined) rc = ucmd.fail(ENOENT, `there is no object ${id}`);
    else if (obj.type === 'HWPT_NESTED') {
      const got = invalidateNested(ucmd, obj as HwptObject, dataType, uptr, entryLen, entryNum);
      done = got.done;
      rc = got.failure === undefined ? 0 : failWith(ucmd, got.failure);
    } else if (obj.type === 'VIOMMU') {
      const viommu = obj as ViommuObject;
      const array = userArray(ucmd.proc, 'invalidation', dataType, uptr, entryLen, entryNum);
      const got = viommu.driver.cacheInvalidate(array);
      done = got.handled;
      rc = got.refusal === undefined ? 0 : failWith(ucmd, got.refusal);
    } else {
      rc = ucmd.fail(
        EINVAL,
        `object ${id} is a ${obj.type}; invalidation takes a nested HWPT or a vIOMMU`,
      );
    }
  }
  ucmd.setU32(INV.entry_num as number, done);
  const out = ucmd.respond();
  return out !== 0 ? -EFAULT : rc;
}

/** cache_invalidate_user of the nested domain's driver. */
function invalidateNested(
  ucmd: Ucmd,
  hwpt: HwptObject,
  dataType: number,
  uptr: bigint,
  entryLen: number,
  entryNum: number,
): { done: number; failure?: Failure } {
  const domain = hwpt.domain as IommuDomain;
  const model = domain.iommu.model;
  const vendor = INVALIDATE_DATA[model];
  if (vendor === undefined) {
    return {
      done: 0,
      failure: { errno: EOPNOTSUPP, reason: `${domain.iommu.name} has no user cache invalidation` },
    };
  }
  if (dataType !== vendor.type) {
    return {
      done: 0,
      failure: {
        errno: EINVAL,
        reason: `data_type 0x${dataType.toString(16)} is not ${vendor.name}'s 0x${vendor.type.toString(16)}`,
      },
    };
  }
  const mock = domain.iommu instanceof MockIommu ? domain.iommu : null;
  for (let i = 0; i < entryNum; i++) {
    const entry = copyVendorStruct(ucmd, vendor, uptr + BigInt(entryLen) * BigInt(i), entryLen);
    if ('errno' in entry) return { done: i, failure: entry };
    const v = new DataView(entry.buffer);
    if (mock !== null) {
      const f = v.getUint32(0, true);
      const iotlbId = v.getUint32(4, true);
      if ((f & ~IOMMU_TEST_INVALIDATE_FLAG_ALL) !== 0) {
        return {
          done: i,
          failure: { errno: EOPNOTSUPP, reason: `entry ${i}: unknown flags 0x${f.toString(16)}` },
        };
      }
      const r = mock.invalidateNested(domain, [{ flags: f, iotlbId }]);
      if (r.errno !== 0) {
        return {
          done: i,
          failure: { errno: r.errno, reason: `entry ${i}: iotlb_id ${iotlbId} is over 3` },
        };
      }
    } else {
      const s1 = structs.iommu_hwpt_vtd_s1_invalidate.decode(entry);
      if ((s1.flags & ~IOMMU_VTD_INV_FLAGS_LEAF) !== 0 || s1.__reserved !== 0) {
        return {
          done: i,
          failure: {
            errno: EOPNOTSUPP,
            reason: `entry ${i}: unknown flags or a nonzero __reserved`,
          },
        };
      }
      const r = (domain as VtdDomain).invalidateUser(s1.addr, s1.npages, s1.flags);
      if (!r.ok) return { done: i, failure: { errno: r.errno, reason: `entry ${i}: ${r.reason}` } };
    }
  }
  return { done: entryNum };
}
