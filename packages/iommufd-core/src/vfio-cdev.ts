/**
 * The VFIO device cdev (/dev/vfio/devices/vfioN, drivers/vfio/device_cdev.c
 * and iommufd.c of VFIO): BIND_IOMMUFD binds the device to an iommufd and
 * returns its device id; ATTACH_IOMMUFD_PT attaches the RID or, with
 * VFIO_DEVICE_ATTACH_PASID, one PASID (when already attached it replaces, as
 * VFIO does) and returns the HWPT id; DETACH returns it to blocked. Every
 * other ioctl needs the bind first (EINVAL). Closing the fd unbinds. PASIDs
 * are offered by vfio-pci only (vfio-platform has no PASID ops).
 */
import {
  copyIoctlArgIn,
  copyIoctlArgOut,
  EBADF,
  EBADFD,
  EFAULT,
  EINVAL,
  ENOTTY,
  ioctlByRequest,
  type UserMemory,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
} from '@iommufd-sim/uapi-types';
import { bindDevice, type DeviceObject, IOMMU_NO_PASID } from './device.js';
import type { FileDescription } from './files.js';
import { offsets } from './ioas.js';
import type { Process } from './process.js';

const BIND = offsets('vfio_device_bind_iommufd');
const ATTACH = offsets('vfio_device_attach_iommufd_pt');
const DETACH = offsets('vfio_device_detach_iommufd_pt');

type VfioFile = Extract<FileDescription, { kind: 'vfio' }>;

/**
 * What VFIO itself records of a bound device's attachments
 * (drivers/vfio/iommufd.c): vdev->iommufd_attached for the RID and the
 * vdev->pasids ida. ATTACH replaces what VFIO attached and attaches anything
 * else; DETACH only undoes what VFIO recorded. The records are VFIO's, not
 * iommufd's: pasid 0 with VFIO_DEVICE_ATTACH_PASID reaches iommufd as the RID
 * (IOMMU_NO_PASID) but VFIO files it under the ida.
 */
interface VfioAttachState {
  rid: boolean;
  readonly pasids: Set<number>;
}

const vfioState = new WeakMap<DeviceObject, VfioAttachState>();

function stateOf(idev: DeviceObject): VfioAttachState {
  let st = vfioState.get(idev);
  if (st === undefined) {
    st = { rid: false, pasids: new Set() };
    vfioState.set(idev, st);
  }
  return st;
}

/** ioctl on a VFIO device fd. */
export function vfioDeviceIoctl(
  f: VfioFile,
  proc: Process,
  request: number,
  user: UserMemory | Uint8Array | null,
): number {
  const info = ioctlByRequest(request);
  const known =
    request === VFIO_DEVICE_BIND_IOMMUFD ||
    request === VFIO_DEVICE_ATTACH_IOMMUFD_PT ||
    request === VFIO_DEVICE_DETACH_IOMMUFD_PT;
  const name = info?.name ?? `ioctl 0x${request.toString(16)}`;
  const fail = (errno: number, reason: string): number => {
    proc.recordError(name, errno, reason);
    return -errno;
  };
  if (request !== VFIO_DEVICE_BIND_IOMMUFD && f.bound === null) {
    return fail(
      EINVAL,
      `${f.device.path} is not bound to an iommufd yet (VFIO_DEVICE_BIND_IOMMUFD)`,
    );
  }
  if (!known || info === undefined) {
    return fail(ENOTTY, `the model has no VFIO device ioctl 0x${request.toString(16)}`);
  }
  if (user === null) return fail(EFAULT, 'the argument pointer is NULL');
  const copied = copyIoctlArgIn(info, user, { pasidSupported: f.device.device.isPci });
  if (!copied.ok) return fail(copied.errno, copied.reason);
  const view = new DataView(copied.bytes.buffer);
  if (request === VFIO_DEVICE_BIND_IOMMUFD) {
    if (f.bound !== null) return fail(EINVAL, `${f.device.path} is already bound`);
    const flags = view.getUint32(BIND.flags as number, true);
    if (flags !== 0) return fail(EINVAL, `unknown bind flags 0x${flags.toString(16)}`);
    const fd = view.getInt32(BIND.iommufd as number, true);
    const target = proc.fileOf(fd);
    if (target === undefined) return fail(EBADF, `iommufd ${fd} is not an open fd`);
    if (target.kind !== 'iommufd')
      return fail(EBADFD, `fd ${fd} is a ${target.kind}, not /dev/iommu`);
    // vfio_df_open: the cdev path opens a device once, so another fd cannot bind it too.
    if (f.device.boundTo !== null) {
      return fail(EINVAL, `${f.device.path} is already bound through another fd`);
    }
    const idev = bindDevice(target.ctx, f.device, true);
    if ('errno' in idev) return fail(idev.errno, idev.reason);
    view.setUint32(BIND.out_devid as number, idev.id, true);
    const out = copyIoctlArgOut(info, copied.bytes, user, copied.userSize);
    if (!out.ok) {
      idev.unbind();
      return fail(out.errno, out.reason);
    }
    f.bound = idev;
    return 0;
  }
  const idev = f.bound;
  if (idev === null) return fail(EINVAL, 'not bound');
  if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT) {
    const withPasid =
      (view.getUint32(ATTACH.flags as number, true) & VFIO_DEVICE_ATTACH_PASID) !== 0;
    const pasid = withPasid ? view.getUint32(ATTACH.pasid as number, true) : IOMMU_NO_PASID;
    const ptId = view.getUint32(ATTACH.pt_id as number, true);
    const st = stateOf(idev);
    // vfio_iommufd_physical_(pasid_)attach_ioas: replace what VFIO attached, else attach.
    const known = withPasid ? st.pasids.has(pasid) : st.rid;
    const got = known ? idev.replace(ptId, pasid) : idev.attach(ptId, pasid);
    if ('errno' in got) return fail(got.errno, got.reason);
    if (withPasid) st.pasids.add(pasid);
    else st.rid = true;
    view.setUint32(ATTACH.pt_id as number, got.id, true);
    const out = copyIoctlArgOut(info, copied.bytes, user, copied.userSize);
    if (!out.ok) {
      // vfio_df_ioctl_attach_pt detaches when pt_id cannot be written back, even after a replace.
      vfioDetach(idev, withPasid, pasid);
      return fail(out.errno, out.reason);
    }
    return 0;
  }
  const withPasid = (view.getUint32(DETACH.flags as number, true) & VFIO_DEVICE_DETACH_PASID) !== 0;
  vfioDetach(idev, withPasid, withPasid ? view.getUint32(DETACH.pasid as number, true) : 0);
  return 0;
}

/** vfio_iommufd_physical_(pasid_)detach_ioas: undo only what VFIO recorded. */
function vfioDetach(idev: DeviceObject, withPasid: boolean, pasid: number): void {
  const st = stateOf(idev);
  if (withPasid) {
    if (!st.pasids.delete(pasid)) return;
    idev.detach(pasid);
  } else {
    if (!st.rid) return;
    st.rid = false;
    idev.detach(IOMMU_NO_PASID);
  }
}
