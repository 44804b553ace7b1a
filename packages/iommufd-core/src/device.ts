/**
 * Device objects (device.c): a device bound to an iommufd context, and its
 * RID attachment: attach (to a HWPT, or to an IOAS through an automatic
 * HWPT), replace and detach. Attaching enforces the device's reserved
 * regions on the IOAS; a device that is bound but not attached is blocked.
 * (PASID attachments come with part 2 of the model.)
 */
import { EBUSY, EINVAL, ENOENT } from '@iommufd-sim/uapi-types';
import type { IommufdContext } from './context.js';
import type { HostDevice } from './host.js';
import { allocHwptPaging, HwptPagingObject } from './hw-pagetable.js';
import type { Failure } from './io-pagetable.js';
import type { IoasObject } from './ioas.js';
import { IommufdObject } from './objects.js';

/** A bound device (iommufd_device, "idev"). */
export class DeviceObject extends IommufdObject {
  readonly type = 'DEVICE' as const;
  /** The HWPT its RID is attached to. */
  hwpt: HwptPagingObject | null = null;
  private bound = true;

  constructor(
    readonly ctx: IommufdContext,
    /** The device. */
    readonly hostDevice: HostDevice,
    /** VFIO-bound devices keep the context alive; selftest mock devices do not (as in the kernel). */
    private readonly holdsContext: boolean,
  ) {
    super();
    // The binding driver (VFIO or the selftest object) holds a reference until unbind.
    this.users++;
  }

  /** Unbind: detach, drop the binding's reference and leave the table. */
  unbind(): void {
    if (!this.bound) return;
    this.bound = false;
    this.detach();
    this.users--;
    this.ctx.objects.remove(this);
    this.hostDevice.boundTo = null;
    if (this.holdsContext) this.ctx.release();
  }

  destroy(): void {
    this.detach();
    this.hostDevice.boundTo = null;
  }

  /** iommufd_device_attach: attach the RID to `ptId` (a HWPT, or an IOAS for an automatic HWPT). */
  attach(ptId: number): HwptPagingObject | Failure {
    const target = this.lookupPt(ptId);
    if ('errno' in target) return target;
    if (target instanceof HwptPagingObject) {
      const bad = this.doAttach(target);
      return bad ?? target;
    }
    return this.autoDomain(target, (h) => this.doAttach(h), true);
  }

  /** iommufd_device_replace: move the RID to `ptId`; replacing with the current HWPT does nothing. */
  replace(ptId: number): HwptPagingObject | Failure {
    const target = this.lookupPt(ptId);
    if ('errno' in target) return target;
    if (target instanceof HwptPagingObject) {
      const bad = this.doReplace(target);
      return bad ?? target;
    }
    return this.autoDomain(target, (h) => this.doReplace(h), false);
  }

  /** iommufd_device_detach: back to blocked; an automatic HWPT left unused is freed. */
  detach(): void {
    const hwpt = this.hwpt;
    if (hwpt === null) return;
    hwpt.ioas.iopt.removeReserved(this);
    this.hostDevice.iommu.detach(this.hostDevice.device);
    this.hwpt = null;
    this.dropHwpt(hwpt);
  }

  private lookupPt(ptId: number): HwptPagingObject | IoasObject | Failure {
    const obj = this.ctx.objects.get(ptId);
    if (obj === undefined) return { errno: ENOENT, reason: `there is no object ${ptId}` };
    if (obj instanceof HwptPagingObject) return obj;
    if (obj.type === 'IOAS') return obj as IoasObject;
    return {
      errno: EINVAL,
      reason: `object ${ptId} is a ${obj.type}; a device attaches to an IOAS or a HWPT`,
    };
  }

  private dropHwpt(hwpt: HwptPagingObject): void {
    hwpt.users--;
    if (hwpt.auto && hwpt.users === 1) this.ctx.objects.remove(hwpt);
  }

  /** iopt_table_enforce_dev_resv_regions: the device's reserved regions go into the IOAS. */
  private enforceRegions(ioas: IoasObject): Failure | undefined {
    const { iommu, device } = this.hostDevice;
    for (const r of iommu.reservedRegions(device)) {
      if (r.kind === 'direct-relaxable') continue;
      const bad = ioas.iopt.reserve(BigInt(r.start), BigInt(r.last), this);
      if (bad !== undefined) {
        ioas.iopt.removeReserved(this);
        return {
          errno: bad.errno,
          reason: `${this.hostDevice.name}'s ${r.kind} region: ${bad.reason}`,
        };
      }
    }
    return undefined;
  }

  /** iommufd_hw_pagetable_attach for a device not attached yet. */
  private doAttach(hwpt: HwptPagingObject): Failure | undefined {
    if (this.hwpt !== null) {
      if (this.hwpt === hwpt) {
        return { errno: EBUSY, reason: `the device is already attached to HWPT ${hwpt.id}` };
      }
      return {
        errno: EINVAL,
        reason: `the device is attached to HWPT ${this.hwpt.id}; use replace to move it`,
      };
    }
    const bad = this.enforceRegions(hwpt.ioas);
    if (bad !== undefined) return bad;
    const { iommu, device } = this.hostDevice;
    const hw = iommu.attach(device, hwpt.domain as NonNullable<HwptPagingObject['domain']>);
    if (!hw.ok) {
      hwpt.ioas.iopt.removeReserved(this);
      return { errno: hw.errno, reason: `${iommu.name}: ${hw.reason}` };
    }
    hwpt.users++;
    this.hwpt = hwpt;
    return undefined;
  }

  /** iommufd_device_do_replace. */
  private doReplace(hwpt: HwptPagingObject): Failure | undefined {
    const old = this.hwpt;
    if (old === null)
      return { errno: EINVAL, reason: 'the device is not attached; nothing to replace' };
    if (old === hwpt) return undefined;
    const moving = old.ioas !== hwpt.ioas;
    if (moving) {
      const bad = this.enforceRegions(hwpt.ioas);
      if (bad !== undefined) return bad;
    }
    const { iommu, device } = this.hostDevice;
    const hw = iommu.attach(device, hwpt.domain as NonNullable<HwptPagingObject['domain']>);
    if (!hw.ok) {
      if (moving) hwpt.ioas.iopt.removeReserved(this);
      return { errno: hw.errno, reason: `${iommu.name}: ${hw.reason}` };
    }
    if (moving) old.ioas.iopt.removeReserved(this);
    hwpt.users++;
    this.hwpt = hwpt;
    this.dropHwpt(old);
    return undefined;
  }

  /**
   * iommufd_device_auto_get_domain: reuse the first automatic HWPT of the
   * IOAS that takes the device (EINVAL means "not this one"), else make one.
   */
  private autoDomain(
    ioas: IoasObject,
    apply: (hwpt: HwptPagingObject) => Failure | undefined,
    immediate: boolean,
  ): HwptPagingObject | Failure {
    for (const hwpt of [...ioas.hwpts]) {
      if (!hwpt.auto || hwpt.state !== 'live') continue;
      const bad = apply(hwpt);
      if (bad === undefined) return hwpt;
      if (bad.errno !== EINVAL) return bad;
    }
    // Attach adds the device before the domain joins the IOAS (immediate_attach);
    // replace builds the HWPT first and then moves the device to it.
    const made = immediate
      ? allocHwptPaging(this.ctx, ioas, this, { auto: true }, apply, () => this.undo())
      : allocHwptPaging(this.ctx, ioas, this, { auto: true });
    if ('errno' in made) return made;
    if (!immediate) {
      const bad = apply(made);
      if (bad !== undefined) {
        this.ctx.objects.abort(made);
        return bad;
      }
    }
    this.ctx.objects.finalize(made);
    return made;
  }

  // A new automatic HWPT failed to join its IOAS after the device attached: detach again.
  private undo(): void {
    const hwpt = this.hwpt;
    if (hwpt === null) return;
    hwpt.ioas.iopt.removeReserved(this);
    this.hostDevice.iommu.detach(this.hostDevice.device);
    this.hwpt = null;
    hwpt.users--;
  }
}

/** iommufd_device_bind: a new device object in `ctx` (EBUSY if the device is bound already). */
export function bindDevice(
  ctx: IommufdContext,
  hostDevice: HostDevice,
  holdsContext: boolean,
): DeviceObject | Failure {
  if (hostDevice.boundTo !== null) {
    return { errno: EBUSY, reason: `${hostDevice.name} is already bound to an iommufd` };
  }
  const idev = new DeviceObject(ctx, hostDevice, holdsContext);
  const full = ctx.objects.allocate(idev);
  if (full !== undefined) return full;
  ctx.objects.finalize(idev);
  hostDevice.boundTo = idev;
  if (holdsContext) ctx.hold();
  return idev;
}
