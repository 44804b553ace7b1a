/**
 * vIOMMU and vDEVICE objects (viommu.c) and their ioctls. A VIOMMU is a
 * slice of one physical IOMMU for one VM, made from a device (which picks
 * the IOMMU and its driver) and a NEST_PARENT HWPT it holds; its driver
 * (from the viommu package) does the type's work. A VDEVICE gives a bound
 * device its guest id (virt_id) in one vIOMMU: unique per vIOMMU, one per
 * device across all of them. Unbinding a device that has a VDEVICE
 * destroys it and leaves its id a tombstone until the context closes.
 *
 * Destruction order (anything else is EBUSY): vDEVICEs; nested HWPTs,
 * vEVENTQs and HW queues (highest index first); munmap of the vIOMMU's
 * pages; the vIOMMU; the parent HWPT; the IOAS.
 */

import type { Device, IommuDomain } from '@iommufd-sim/hw-models';
import { EEXIST, EINVAL, EOPNOTSUPP, IOMMU_VIOMMU_TYPE_DEFAULT } from '@iommufd-sim/uapi-types';
import {
  createViommuDriver,
  type GuestEvent,
  respondViommuData,
  type UserData,
  type VdeviceEntry,
  type ViommuDriver,
  viommuTypeProblem,
} from '@iommufd-sim/viommu';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import type { Ucmd } from './dispatch.js';
import type { HwptPagingObject } from './hw-pagetable.js';
import type { HwQueueObject } from './hw-queue.js';
import { getDevice, getHwptPaging, getTyped } from './hwpt.js';
import { offsets } from './ioas.js';
import type { MmapRegionEntry } from './mmap-regions.js';
import { IommufdObject } from './objects.js';
import { userData } from './user-data.js';
import type { VeventqObject } from './veventq.js';

const ALLOC = offsets('iommu_viommu_alloc');
const VDEV = offsets('iommu_vdevice_alloc');

/** A vIOMMU. */
export class ViommuObject extends IommufdObject {
  readonly type = 'VIOMMU' as const;
  /** Its vEVENTQs, by type (one each). */
  readonly veventqs = new Map<number, VeventqObject>();
  /** Its HW queues, by index (the driver took each index). */
  readonly hwQueues = new Map<number, HwQueueObject>();
  /** Its vDEVICE objects, by virt_id. */
  readonly vdeviceObjects = new Map<bigint, VdeviceObject>();
  /** The region its driver published for mmap, if any. */
  mmapRegion: MmapRegionEntry | null = null;

  constructor(
    readonly ctx: IommufdContext,
    /** The nesting parent (held). */
    readonly hwpt: HwptPagingObject,
    /** The driver state. */
    readonly driver: ViommuDriver,
    /** The device it was made from. */
    readonly madeFrom: DeviceObject,
  ) {
    super();
    hwpt.users++;
    ctx.host.liveViommus.add(this);
  }

  override describe(): string {
    return `viommu ${this.id} (${this.driver.name}, parent HWPT ${this.hwpt.id})`;
  }

  /**
   * iommufd_viommu_report_event: queue `event` on the vEVENTQ of its type.
   * 0 (also when the queue is full and the event is lost), or -EOPNOTSUPP
   * when the vIOMMU has no vEVENTQ of that type.
   */
  report(event: GuestEvent): number {
    const q = this.veventqs.get(event.type);
    if (q === undefined) return -EOPNOTSUPP;
    q.queue.report(event.payload);
    return 0;
  }

  destroy(): void {
    this.ctx.host.liveViommus.delete(this);
    if (this.mmapRegion !== null) this.ctx.mmaps.remove(this.mmapRegion);
    this.mmapRegion = null;
    this.driver.destroy();
    this.hwpt.users--;
  }
}

/** A vDEVICE. */
export class VdeviceObject extends IommufdObject {
  readonly type = 'VDEVICE' as const;

  constructor(
    readonly viommu: ViommuObject,
    /** The device (its object is held). */
    readonly idev: DeviceObject,
    /** Its entry in the vIOMMU's table. */
    readonly entry: VdeviceEntry<Device>,
  ) {
    super();
    viommu.users++;
    idev.users++;
    idev.vdevice = this;
    viommu.vdeviceObjects.set(entry.virtId, this);
  }

  /** The guest's id. */
  get virtId(): bigint {
    return this.entry.virtId;
  }

  override describe(): string {
    return `vdevice ${this.id} (virt_id 0x${this.virtId.toString(16)} of ${this.idev.hostDevice.name})`;
  }

  destroy(): void {
    const d = this.viommu.driver;
    d.vdeviceDestroy(this.entry);
    d.vdevices.remove(this.entry);
    this.viommu.vdeviceObjects.delete(this.entry.virtId);
    this.viommu.users--;
    this.idev.users--;
    if (this.idev.vdevice === this) this.idev.vdevice = null;
  }
}

/** iommufd_get_viommu. */
export function getViommu(ucmd: Ucmd, id: number): ViommuObject | number {
  return getTyped<ViommuObject>(ucmd, id, 'VIOMMU', 'a vIOMMU');
}

/**
 * IOMMU_VIOMMU_ALLOC: flags and type DEFAULT → EOPNOTSUPP; the device
 * (ENOENT); the driver's type (EOPNOTSUPP); the HWPT (ENOENT unless a paging
 * HWPT; EINVAL without NEST_PARENT); then the driver's init with the user
 * data, which may publish an mmap region.
 */
export function viommuAlloc(ucmd: Ucmd): number {
  const ctx = ucmd.ctx;
  const flags = ucmd.u32(ALLOC.flags as number);
  const type = ucmd.u32(ALLOC.type as number);
  if (flags !== 0)
    return ucmd.fail(
      EOPNOTSUPP,
      `flags 0x${flags.toString(16)}: IOMMU_VIOMMU_ALLOC defines no flags`,
    );
  if (type === IOMMU_VIOMMU_TYPE_DEFAULT) {
    return ucmd.fail(EOPNOTSUPP, 'type 0 (IOMMU_VIOMMU_TYPE_DEFAULT) is reserved');
  }
  const idev = getDevice(ucmd, ucmd.u32(ALLOC.dev_id as number));
  if (typeof idev === 'number') return idev;
  const { iommu } = idev.hostDevice;
  const support = ctx.host.viommuSupport(iommu);
  const unsupported = viommuTypeProblem(type, iommu, support);
  if (unsupported !== undefined) return ucmd.fail(unsupported.errno, unsupported.reason);
  const hwptId = ucmd.u32(ALLOC.hwpt_id as number);
  const hwpt = getHwptPaging(ucmd, hwptId);
  if (typeof hwpt === 'number') return hwpt;
  if (!hwpt.nestParent) {
    return ucmd.fail(EINVAL, `HWPT ${hwptId} was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT`);
  }
  const driver = createViommuDriver(type, iommu, hwpt.domain as IommuDomain, support);
  if ('errno' in driver) return ucmd.fail(driver.errno, driver.reason);
  const viommu = new ViommuObject(ctx, hwpt, driver, idev);
  const full = ctx.objects.allocate(viommu);
  if (full !== undefined) {
    viommu.destroy();
    return ucmd.fail(full.errno, full.reason);
  }
  const dataLen = ucmd.u32(ALLOC.data_len as number);
  const data: UserData | null =
    dataLen === 0
      ? null
      : userData(ucmd.proc, 'the vIOMMU data', type, ucmd.u64(ALLOC.data_uptr as number), dataLen);
  const bad = driver.init(data);
  if (bad !== undefined) {
    ctx.objects.abort(viommu);
    return ucmd.fail(bad.errno, bad.reason);
  }
  const region = driver.mmapRegion;
  if (region !== null && data !== null) {
    viommu.mmapRegion = ctx.mmaps.add(viommu, region.contents, region.length);
    const out = respondViommuData(driver, data, viommu.mmapRegion.offset);
    if (out !== undefined) {
      ctx.objects.abort(viommu);
      return ucmd.fail(out.errno, out.reason);
    }
  }
  ucmd.setU32(ALLOC.out_viommu_id as number, viommu.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ctx.objects.abort(viommu);
    return rc;
  }
  ctx.objects.finalize(viommu);
  return 0;
}

/**
 * IOMMU_VDEVICE_ALLOC: the vIOMMU and the device (ENOENT); the same
 * physical IOMMU (EINVAL); the device's one vDEVICE (EEXIST); the virt_id
 * free in this vIOMMU (EEXIST); the driver's vdevice_init.
 */
export function vdeviceAlloc(ucmd: Ucmd): number {
  const ctx = ucmd.ctx;
  const virtId = ucmd.u64(VDEV.virt_id as number);
  const viommu = getViommu(ucmd, ucmd.u32(VDEV.viommu_id as number));
  if (typeof viommu === 'number') return viommu;
  const idev = getDevice(ucmd, ucmd.u32(VDEV.dev_id as number));
  if (typeof idev === 'number') return idev;
  const { iommu, device, name } = idev.hostDevice;
  if (iommu !== viommu.driver.iommu) {
    return ucmd.fail(
      EINVAL,
      `${name} is behind ${iommu.name}; vIOMMU ${viommu.id} is a slice of ${viommu.driver.iommu.name}`,
    );
  }
  if (idev.vdevice !== null) {
    return ucmd.fail(
      EEXIST,
      `${name} already has vDEVICE ${idev.vdevice.id} (virt_id 0x${idev.vdevice.virtId.toString(16)}); a device has one vDEVICE`,
    );
  }
  const entry = viommu.driver.vdevices.insert(device, virtId);
  if (entry === 'taken') {
    return ucmd.fail(
      EEXIST,
      `virt_id 0x${virtId.toString(16)} is already used in vIOMMU ${viommu.id}`,
    );
  }
  const vdev = new VdeviceObject(viommu, idev, entry);
  const full = ctx.objects.allocate(vdev);
  if (full !== undefined) {
    vdev.destroy();
    return ucmd.fail(full.errno, full.reason);
  }
  const bad = viommu.driver.vdeviceInit(entry);
  if (bad !== undefined) {
    // vdevice_init failed: nothing of the driver's to undo.
    ctx.objects.abort(vdev);
    return ucmd.fail(bad.errno, bad.reason);
  }
  ucmd.setU32(VDEV.out_vdevice_id as number, vdev.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ctx.objects.abort(vdev);
    return rc;
  }
  ctx.objects.finalize(vdev);
  return 0;
}
