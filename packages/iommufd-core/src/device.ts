/**
 * Device objects (device.c): a device bound to an iommufd context and its
 * attachments, one for the RID (IOMMU_NO_PASID) and one per PASID: attach
 * (to a HWPT, or to an IOAS through an automatic HWPT), replace and detach.
 * Attaching the RID to a paging HWPT enforces the device's reserved regions
 * on the IOAS; a device that is bound but not attached is blocked.
 *
 * PASID compatibility (iommufd_hwpt_pasid_compat): a PASID takes only HWPTs
 * allocated with IOMMU_HWPT_ALLOC_PASID, and only while the RID is detached
 * or on such a HWPT; the RID may not move to a HWPT without the flag while
 * any PASID is attached.
 */
import type { IommuDomain } from '@iommufd-sim/hw-models';
import { EBUSY, EINVAL, ENOENT } from '@iommufd-sim/uapi-types';
import type { IommufdContext } from './context.js';
import type { HostDevice } from './host.js';
import {
  allocHwptPaging,
  HwptNestedObject,
  type HwptObject,
  HwptPagingObject,
} from './hw-pagetable.js';
import type { Failure } from './io-pagetable.js';
import type { IoasObject } from './ioas.js';
import { IommufdObject } from './objects.js';
import type { VdeviceObject } from './viommu.js';

/** The RID's attachment key (the kernel's IOMMU_NO_PASID). */
export const IOMMU_NO_PASID = 0;

/** A bound device (iommufd_device, "idev"). */
export class DeviceObject extends IommufdObject {
  readonly type = 'DEVICE' as const;
  /** What each of its PASIDs (and its RID, at {@link IOMMU_NO_PASID}) is attached to. */
  readonly attachments = new Map<number, HwptObject>();
  /** Its vDEVICE (one at most, across all vIOMMUs). */
  vdevice: VdeviceObject | null = null;
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

  /** The HWPT its RID is attached to. */
  get hwpt(): HwptObject | null {
    return this.attachments.get(IOMMU_NO_PASID) ?? null;
  }

  /** The HWPT attached at `pasid` (the RID for {@link IOMMU_NO_PASID}), or null. */
  attachment(pasid: number): HwptObject | null {
    return this.attachments.get(pasid) ?? null;
  }

  /** Unbind: detach every PASID and the RID, drop the binding's reference and leave the table. */
  unbind(): void {
    if (!this.bound) return;
    this.bound = false;
    // iommufd_device_pre_destroy: the vDEVICE goes, its id stays a tombstone until close.
    if (this.vdevice !== null) this.ctx.objects.tombstone(this.vdevice);
    this.detachAll();
    this.users--;
    this.ctx.objects.remove(this);
    this.hostDevice.boundTo = null;
    if (this.holdsContext) this.ctx.release();
  }

  destroy(): void {
    this.detachAll();
    this.hostDevice.boundTo = null;
  }

  /** iommufd_device_attach: attach `pasid` to `ptId` (a HWPT, or an IOAS for an automatic HWPT). */
  attach(ptId: number, pasid = IOMMU_NO_PASID): HwptObject | Failure {
    const target = this.lookupPt(ptId);
    if ('errno' in target) return target;
    if (target.type !== 'IOAS') {
      const bad = this.doAttach(target, pasid);
      return bad ?? target;
    }
    return this.autoDomain(target, pasid, (h) => this.doAttach(h, pasid), true);
  }

  /** iommufd_device_replace: move `pasid` to `ptId`; replacing with the current HWPT does nothing. */
  replace(ptId: number, pasid = IOMMU_NO_PASID): HwptObject | Failure {
    const target = this.lookupPt(ptId);
    if ('errno' in target) return target;
    if (target.type !== 'IOAS') {
      const bad = this.doReplace(target, pasid);
      return bad ?? target;
    }
    return this.autoDomain(target, pasid, (h) => this.doReplace(h, pasid), false);
  }

  /** iommufd_device_detach: `pasid` back to blocked; an automatic HWPT left unused is freed. */
  detach(pasid = IOMMU_NO_PASID): void {
    const hwpt = this.attachments.get(pasid);
    if (hwpt === undefined) return;
    const { iommu, device } = this.hostDevice;
    if (pasid === IOMMU_NO_PASID) {
      iommu.detach(device);
      viommuOf(hwpt)?.driver.forgetMaster(device);
    } else if (this.maxPasids() > 0) iommu.detach(device, pasid);
    this.attachments.delete(pasid);
    hwpt.fault?.respondAttachment(this, pasid);
    // find_hwpt_paging: a nested HWPT's regions live in its parent's IOAS.
    if (pasid === IOMMU_NO_PASID) hwpt.paging.ioas.iopt.removeReserved(this);
    this.dropHwpt(hwpt);
  }

  private detachAll(): void {
    for (const pasid of [...this.attachments.keys()]) {
      if (pasid !== IOMMU_NO_PASID) this.detach(pasid);
    }
    this.detach(IOMMU_NO_PASID);
  }

  private lookupPt(ptId: number): HwptObject | IoasObject | Failure {
    const obj = this.ctx.objects.get(ptId);
    if (obj === undefined) return { errno: ENOENT, reason: `there is no object ${ptId}` };
    if (obj instanceof HwptPagingObject || obj instanceof HwptNestedObject) return obj;
    if (obj.type === 'IOAS') return obj as IoasObject;
    return {
      errno: EINVAL,
      reason: `object ${ptId} is a ${obj.type}; a device attaches to an IOAS or a HWPT`,
    };
  }

  private dropHwpt(hwpt: HwptObject): void {
    hwpt.users--;
    if (hwpt instanceof HwptPagingObject && hwpt.auto && hwpt.users === 1) {
      this.ctx.objects.remove(hwpt);
    }
  }

  /** iommufd_hwpt_pasid_compat. */
  private pasidCompat(hwpt: HwptObject, pasid: number): Failure | undefined {
    if (pasid === IOMMU_NO_PASID) {
      if (!hwpt.pasidCompat && this.attachments.size > (this.hwpt === null ? 0 : 1)) {
        return {
          errno: EINVAL,
          reason: `PASIDs of the device are attached, and HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_PASID`,
        };
      }
      return undefined;
    }
    if (!hwpt.pasidCompat) {
      return {
        errno: EINVAL,
        reason:
          hwpt instanceof HwptPagingObject && hwpt.auto
            ? `a PASID cannot use automatic HWPT ${hwpt.id} (attach an IOAS gives one without IOMMU_HWPT_ALLOC_PASID)`
            : `HWPT ${hwpt.id} was not allocated with IOMMU_HWPT_ALLOC_PASID`,
      };
    }
    const rid = this.hwpt;
    if (rid !== null && !rid.pasidCompat) {
      return {
        errno: EINVAL,
        reason: `the device's RID is on HWPT ${rid.id}, which was not allocated with IOMMU_HWPT_ALLOC_PASID`,
      };
    }
    return undefined;
  }

  /** iommufd_device_attach_reserved_iova: the device's reserved regions go into the IOAS. */
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

  /**
   * dev->iommu->max_pasids (dev_iommu_get_max_pasids): the PASIDs both the
   * device and its IOMMU support, 0 when either has none. The selftest's mock
   * devices always carry a "pasid-num-bits" property, so one without PASIDs
   * still has 1 << 0 = 1.
   */
  private maxPasids(): number {
    const { iommu, device } = this.hostDevice;
    const log2 = iommu.hwInfo(device).maxPasidLog2;
    if (log2 > 0) return 2 ** log2;
    return iommu.model === 'mock' ? 1 : 0;
  }

  /** iommu_attach_device_pasid: a PASID at or past max_pasids is EINVAL, unless the device has none. */
  private pasidInRange(pasid: number): Failure | undefined {
    if (pasid === IOMMU_NO_PASID) return undefined;
    const max = this.maxPasids();
    if (max === 0 || pasid < max) return undefined;
    return {
      errno: EINVAL,
      reason: `PASID ${pasid} is not below ${this.hostDevice.name}'s max_pasids ${max}`,
    };
  }

  /** Program the hardware: point `pasid` (or the RID) at the HWPT's domain. */
  private hwAttach(hwpt: HwptObject, pasid: number): Failure | undefined {
    const { iommu, device } = this.hostDevice;
    // __iommu_set_group_pasid skips a device with max_pasids 0: the PASID is
    // recorded as attached, the driver never hears of it.
    if (pasid !== IOMMU_NO_PASID && this.maxPasids() === 0) return undefined;
    // A vIOMMU's nested domain takes only a device with a vDEVICE there (the drivers' attach).
    const viommu = viommuOf(hwpt);
    if (viommu !== null && pasid === IOMMU_NO_PASID) {
      const bad = viommu.driver.vmasterProblem(device);
      if (bad !== undefined) return { errno: bad.errno, reason: `${iommu.name}: ${bad.reason}` };
    }
    const hw = iommu.attach(
      device,
      hwpt.domain as IommuDomain,
      pasid === IOMMU_NO_PASID ? undefined : pasid,
    );
    if (!hw.ok) return { errno: hw.errno, reason: `${iommu.name}: ${hw.reason}` };
    if (pasid === IOMMU_NO_PASID) {
      const old = viommuOf(this.attachments.get(IOMMU_NO_PASID) ?? null);
      if (old !== null && old !== viommu) old.driver.forgetMaster(device);
      viommu?.driver.attachNested(device);
    }
    return undefined;
  }

  /** iommufd_hw_pagetable_attach: `pasid` must not be attached yet. */
  private doAttach(hwpt: HwptObject, pasid: number): Failure | undefined {
    const cur = this.attachments.get(pasid);
    if (cur !== undefined) {
      return {
        errno: EBUSY,
        reason:
          pasid === IOMMU_NO_PASID
            ? `the device is already attached to HWPT ${cur.id}; use replace to move it`
            : `PASID ${pasid} is already attached to HWPT ${cur.id}; use replace to move it`,
      };
    }
    // The RID's reserved regions go into the IOAS of find_hwpt_paging(hwpt):
    // the HWPT itself, or a nested HWPT's parent.
    const resv = pasid === IOMMU_NO_PASID ? hwpt.paging : null;
    if (resv !== null) {
      const bad = this.enforceRegions(resv.ioas);
      if (bad !== undefined) return bad;
    }
    const bad =
      this.pasidCompat(hwpt, pasid) ?? this.pasidInRange(pasid) ?? this.hwAttach(hwpt, pasid);
    if (bad !== undefined) {
      resv?.ioas.iopt.removeReserved(this);
      return bad;
    }
    hwpt.users++;
    this.attachments.set(pasid, hwpt);
    return undefined;
  }

  /** iommufd_device_do_replace. */
  private doReplace(hwpt: HwptObject, pasid: number): Failure | undefined {
    const old = this.attachments.get(pasid);
    if (old === undefined) {
      return {
        errno: EINVAL,
        reason:
          pasid === IOMMU_NO_PASID
            ? 'the device is not attached; nothing to replace'
            : `PASID ${pasid} is not attached; nothing to replace`,
      };
    }
    if (old === hwpt) return undefined;
    // find_hwpt_paging: a nested HWPT counts as its parent's IOAS.
    const newIoas = hwpt.paging.ioas;
    const oldIoas = old.paging.ioas;
    // Reserved regions move only when the RID changes IOAS.
    const moving = pasid === IOMMU_NO_PASID && oldIoas !== newIoas;
    if (moving) {
      const bad = this.enforceRegions(newIoas);
      if (bad !== undefined) return bad;
    }
    const bad = this.pasidCompat(hwpt, pasid) ?? this.hwAttach(hwpt, pasid);
    if (bad !== undefined) {
      if (moving) newIoas.iopt.removeReserved(this);
      return bad;
    }
    // 6.17 answers the old attachment's pending faults through the new HWPT's fault object.
    hwpt.fault?.respondAttachment(this, pasid);
    if (moving) oldIoas.iopt.removeReserved(this);
    hwpt.users++;
    this.attachments.set(pasid, hwpt);
    this.dropHwpt(old);
    return undefined;
  }

  /**
   * iommufd_device_auto_get_domain: reuse the first automatic HWPT of the
   * IOAS that takes the device (EINVAL means "not this one"), else make one.
   */
  private autoDomain(
    ioas: IoasObject,
    pasid: number,
    apply: (hwpt: HwptPagingObject) => Failure | undefined,
    immediate: boolean,
  ): HwptObject | Failure {
    for (const hwpt of [...ioas.hwpts]) {
      if (!hwpt.auto || hwpt.state !== 'live') continue;
      const bad = apply(hwpt);
      if (bad === undefined) return hwpt;
      if (bad.errno !== EINVAL) return bad;
    }
    // Attach adds the device before the domain joins the IOAS (immediate_attach);
    // replace builds the HWPT first and then moves the device to it.
    const made = immediate
      ? allocHwptPaging(this.ctx, ioas, this, { auto: true }, apply, () => this.undo(pasid))
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
  private undo(pasid: number): void {
    const hwpt = this.attachments.get(pasid);
    if (hwpt === undefined) return;
    if (hwpt instanceof HwptPagingObject && pasid === IOMMU_NO_PASID) {
      hwpt.ioas.iopt.removeReserved(this);
    }
    this.hostDevice.iommu.detach(
      this.hostDevice.device,
      pasid === IOMMU_NO_PASID ? undefined : pasid,
    );
    this.attachments.delete(pasid);
    hwpt.users--;
  }
}

/** The vIOMMU a HWPT was allocated on, if any. */
function viommuOf(hwpt: HwptObject | null): HwptNestedObject['viommu'] {
  return hwpt instanceof HwptNestedObject ? hwpt.viommu : null;
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
