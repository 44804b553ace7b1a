/**
 * The multi-SID extension's two ioctls (see the viommu package's
 * multi-sid.ts for the uAPI shape), answered only on a host created with
 * `viommu: { multiSid: true }`; elsewhere they are unknown ioctls (ENOTTY).
 * Arguments follow the iommufd copy rule: `size` below the struct is
 * EINVAL, non-zero bytes past it E2BIG, `__reserved` must be 0.
 */

import {
  E2BIG,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  type UserMemory,
} from '@iommufd-sim/uapi-types';
import {
  decodeExtVdeviceSids,
  decodeExtVdeviceVsid,
  EXT_VDEVICE_SIDS_SIZE,
  EXT_VDEVICE_VSID_SIZE,
  encodeExtVdeviceSids,
  IOMMUFD_EXT_VDEVICE_GET_SIDS,
  IOMMUFD_EXT_VDEVICE_SET_VSID,
} from '@iommufd-sim/viommu';
import type { IommufdContext } from './context.js';
import type { Process } from './process.js';
import type { VdeviceObject } from './viommu.js';

/** Whether `request` is one of the extension's ioctls. */
export function isMultiSidIoctl(request: number): boolean {
  return request === IOMMUFD_EXT_VDEVICE_GET_SIDS || request === IOMMUFD_EXT_VDEVICE_SET_VSID;
}

function readUser(user: UserMemory | Uint8Array, at: number, into: Uint8Array): boolean {
  if (user instanceof Uint8Array) {
    if (at + into.length > user.length) return false;
    into.set(user.subarray(at, at + into.length));
    return true;
  }
  return user.read(at, into.length, into, 0);
}

function writeUser(user: UserMemory | Uint8Array, bytes: Uint8Array): boolean {
  if (user instanceof Uint8Array) {
    if (bytes.length > user.length) return false;
    user.set(bytes);
    return true;
  }
  return user.write(0, bytes);
}

/** The extension's ioctls: >= 0 or -errno, with the reason recorded. */
export function multiSidIoctl(
  ctx: IommufdContext,
  proc: Process,
  request: number,
  user: UserMemory | Uint8Array | null,
): number {
  const get = request === IOMMUFD_EXT_VDEVICE_GET_SIDS;
  const call = get ? 'IOMMUFD_EXT_VDEVICE_GET_SIDS' : 'IOMMUFD_EXT_VDEVICE_SET_VSID';
  const fail = (errno: number, reason: string): number => {
    proc.recordError(call, errno, reason);
    return -errno;
  };
  const want = get ? EXT_VDEVICE_SIDS_SIZE : EXT_VDEVICE_VSID_SIZE;
  const sizeBytes = new Uint8Array(4);
  if (user === null || !readUser(user, 0, sizeBytes))
    return fail(EFAULT, 'the argument cannot be read');
  const size = new DataView(sizeBytes.buffer).getUint32(0, true);
  if (size < want) return fail(EINVAL, `size ${size} is below the ${want}-byte struct`);
  const arg = new Uint8Array(size);
  if (!readUser(user, 0, arg)) return fail(EFAULT, 'the argument cannot be read');
  if (arg.subarray(want).some((b) => b !== 0))
    return fail(E2BIG, `non-zero bytes past the ${want}-byte struct`);
  const id = new DataView(arg.buffer).getUint32(4, true);
  const vdev = ctx.objects.get(id, 'VDEVICE') as VdeviceObject | undefined;
  if (get) {
    const a = decodeExtVdeviceSids(arg);
    if (a.reserved !== 0) return fail(EOPNOTSUPP, '__reserved must be 0');
    if (vdev === undefined) return fail(ENOENT, `there is no vDEVICE ${id}`);
    const { device } = vdev.idev.hostDevice;
    const n = device.streamIds.length > 0 ? device.streamIds.length : 1;
    const out = encodeExtVdeviceSids({ ...a, outNumSids: n });
    return writeUser(user, out) ? 0 : fail(EFAULT, 'the result cannot be written');
  }
  const a = decodeExtVdeviceVsid(arg);
  if (a.reserved !== 0) return fail(EOPNOTSUPP, '__reserved must be 0');
  if (vdev === undefined) return fail(ENOENT, `there is no vDEVICE ${id}`);
  const { device, name } = vdev.idev.hostDevice;
  const n = device.streamIds.length > 0 ? device.streamIds.length : 1;
  if (a.index === 0) {
    return fail(EINVAL, "endpoint 0 is the vDEVICE's own virt_id, set by IOMMU_VDEVICE_ALLOC");
  }
  if (a.index >= n)
    return fail(EINVAL, `${name} has ${n} stream id(s); endpoint ${a.index} does not exist`);
  const r = vdev.viommu.driver.vdevices.setEndpoint(vdev.entry, a.index, a.virtId);
  if (r === 'taken') {
    return fail(
      EEXIST,
      `virt_id 0x${a.virtId.toString(16)} is already used in vIOMMU ${vdev.viommu.id}`,
    );
  }
  // A device attached through this vIOMMU reports its new endpoint at once.
  const driver = vdev.viommu.driver;
  if (driver.reportedVirtId(device) !== undefined) driver.attachNested(device);
  return 0;
}
