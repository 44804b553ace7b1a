/**
 * HWPT objects (hw_pagetable.c): a hardware domain the devices attach to.
 * A HWPT_PAGING is a paging domain of one IOMMU built on an IOAS whose areas
 * it maps; automatic ones are made by attaching a device to an IOAS, reused
 * by later devices that accept them, and freed when their last device
 * leaves. A HWPT_NESTED is a stage 1 the user describes (vendor data) on a
 * NEST_PARENT paging HWPT. Either may carry a FAULT object that receives its
 * devices' page requests.
 */
import type { IommuDomain, IommuModel } from '@iommufd-sim/hw-models';
import { EINVAL } from '@iommufd-sim/uapi-types';
import type { UserData } from '@iommufd-sim/viommu';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import type { FaultObject } from './fault.js';
import type { Failure } from './io-pagetable.js';
import type { IoasObject } from './ioas.js';
import { IommufdObject } from './objects.js';
import type { ViommuObject } from './viommu.js';

/** What every HWPT has. */
export abstract class HwptObject extends IommufdObject {
  abstract override readonly type: 'HWPT_PAGING' | 'HWPT_NESTED';
  /** The hardware domain (null until allocated). */
  domain: IommuDomain | null = null;
  /** The FAULT object its page requests go to (IOMMU_HWPT_FAULT_ID_VALID). */
  fault: FaultObject | null = null;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID: may be attached to PASIDs. */
  pasidCompat = false;

  /** The paging HWPT whose IOAS backs it: itself, or a nested HWPT's parent. */
  abstract get paging(): HwptPagingObject;

  /** Take `fault` as its page-request sink (the HWPT holds a reference). */
  setFault(fault: FaultObject): void {
    this.fault = fault;
    fault.users++;
  }

  /** Release the domain and the fault reference. */
  protected releaseCommon(): void {
    this.domain?.free();
    this.domain = null;
    if (this.fault !== null) {
      this.fault.users--;
      this.fault = null;
    }
  }
}

/** What a paging HWPT is allocated with. */
export interface HwptPagingOptions {
  /** Made by attaching a device to an IOAS (freed with its last device). */
  readonly auto: boolean;
  readonly nestParent?: boolean;
  readonly dirtyTracking?: boolean;
  readonly pasid?: boolean;
  /** Its faults become page requests (a FAULT object will be set). */
  readonly iopf?: boolean;
}

/** A paging HWPT. */
export class HwptPagingObject extends HwptObject {
  readonly type = 'HWPT_PAGING' as const;
  /** Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT. */
  nestParent = false;
  /** Whether the domain joined the IOAS. */
  private added = false;

  constructor(
    readonly ctx: IommufdContext,
    /** The IOAS it maps. */
    readonly ioas: IoasObject,
    /** Allocated automatically. */
    readonly auto: boolean,
  ) {
    super();
    ioas.users++;
  }

  get paging(): HwptPagingObject {
    return this;
  }

  /** Join the IOAS: aperture, alignment, and every area written into the domain. */
  addToIoas(): Failure | undefined {
    const bad = this.ioas.iopt.addDomain(this.domain as IommuDomain);
    if (bad !== undefined) return bad;
    this.added = true;
    this.ioas.hwpts.push(this);
    return undefined;
  }

  destroy(): void {
    if (this.added) {
      this.ioas.iopt.removeDomain(this.domain as IommuDomain);
      const i = this.ioas.hwpts.indexOf(this);
      if (i >= 0) this.ioas.hwpts.splice(i, 1);
      this.added = false;
    }
    this.releaseCommon();
    this.ioas.users--;
  }
}

/**
 * A nested HWPT: the user's stage 1 over a NEST_PARENT paging HWPT, either
 * directly (it holds the parent) or through a vIOMMU (it holds the vIOMMU,
 * which holds the parent).
 */
export class HwptNestedObject extends HwptObject {
  readonly type = 'HWPT_NESTED' as const;

  constructor(
    /** The nesting parent. */
    readonly parent: HwptPagingObject,
    /** The vIOMMU it was allocated on, if any. */
    readonly viommu: ViommuObject | null = null,
  ) {
    super();
    if (viommu !== null) viommu.users++;
    else parent.users++;
  }

  get paging(): HwptPagingObject {
    return this.parent;
  }

  destroy(): void {
    this.releaseCommon();
    if (this.viommu !== null) this.viommu.users--;
    else this.parent.users--;
  }
}

/**
 * iommufd_viommu_alloc_hwpt_nested: a nested domain the vIOMMU's driver
 * builds from the user's data (`flags` without FAULT_ID_VALID go to the
 * driver). Left pending; the caller finalizes it.
 */
export function allocHwptOnViommu(
  ctx: IommufdContext,
  viommu: ViommuObject,
  flags: number,
  pasid: boolean,
  data: UserData,
): HwptNestedObject | Failure {
  const hwpt = new HwptNestedObject(viommu.hwpt, viommu);
  const full = ctx.objects.allocate(hwpt);
  if (full !== undefined) {
    hwpt.destroy();
    return full;
  }
  hwpt.pasidCompat = pasid;
  const got = viommu.driver.allocDomainNested(flags, data);
  if ('errno' in got) {
    ctx.objects.abort(hwpt);
    return { errno: got.errno, reason: `${viommu.driver.iommu.name}: ${got.reason}` };
  }
  hwpt.domain = got;
  return hwpt;
}

/**
 * iommufd_hwpt_paging_alloc: a paging domain in `idev`'s IOMMU on `ioas`.
 * `immediateAttach` runs between allocating the domain and adding it to the
 * IOAS, as the kernel does for automatic domains. The object is left
 * pending; the caller finalizes it.
 */
export function allocHwptPaging(
  ctx: IommufdContext,
  ioas: IoasObject,
  idev: DeviceObject,
  options: HwptPagingOptions,
  immediateAttach?: (hwpt: HwptPagingObject) => Failure | undefined,
  undoAttach?: (hwpt: HwptPagingObject) => void,
): HwptPagingObject | Failure {
  const hwpt = new HwptPagingObject(ctx, ioas, options.auto);
  const full = ctx.objects.allocate(hwpt);
  if (full !== undefined) {
    hwpt.destroy();
    return full;
  }
  hwpt.pasidCompat = options.pasid === true;
  hwpt.nestParent = options.nestParent === true;
  const { iommu, device } = idev.hostDevice;
  const got = iommu.allocDomain({
    type: 'paging',
    device,
    nestParent: hwpt.nestParent,
    dirtyTracking: options.dirtyTracking === true,
    pasid: hwpt.pasidCompat,
    iopf: options.iopf === true,
  });
  if (!got.ok) {
    ctx.objects.abort(hwpt);
    return { errno: got.errno, reason: `${iommu.name}: ${got.reason}` };
  }
  hwpt.domain = got.value;
  if (immediateAttach !== undefined) {
    const bad = immediateAttach(hwpt);
    if (bad !== undefined) {
      ctx.objects.abort(hwpt);
      return bad;
    }
  }
  const bad = hwpt.addToIoas();
  if (bad !== undefined) {
    undoAttach?.(hwpt);
    ctx.objects.abort(hwpt);
    return bad;
  }
  return hwpt;
}

/** What a nested HWPT is allocated with. */
export interface HwptNestedOptions {
  readonly pasid: boolean;
  readonly iopf: boolean;
  /** enum iommu_hwpt_data_type. */
  readonly dataType: number;
  /** The vendor struct as the user gave it (data_len bytes). */
  readonly data: Uint8Array;
}

/**
 * The core's checks of a nesting parent (iommufd_hwpt_nested_alloc): not an
 * automatic HWPT, allocated with NEST_PARENT, and of the same driver as the
 * device (`model`). EINVAL with the reason, or undefined.
 */
export function nestParentProblem(
  parent: HwptPagingObject,
  model: IommuModel,
): Failure | undefined {
  if (parent.auto) {
    return {
      errno: EINVAL,
      reason: `HWPT ${parent.id} was made automatically; a nesting parent must be allocated with NEST_PARENT`,
    };
  }
  if (!parent.nestParent) {
    return {
      errno: EINVAL,
      reason: `HWPT ${parent.id} was not allocated with IOMMU_HWPT_ALLOC_NEST_PARENT`,
    };
  }
  if ((parent.domain as IommuDomain).iommu.model !== model) {
    return { errno: EINVAL, reason: `HWPT ${parent.id} belongs to another IOMMU driver` };
  }
  return undefined;
}

/**
 * iommufd_hwpt_nested_alloc: a nested domain of `idev`'s IOMMU over
 * `parent`, which the caller checked with {@link nestParentProblem}. Left
 * pending; the caller finalizes it.
 */
export function allocHwptNested(
  ctx: IommufdContext,
  parent: HwptPagingObject,
  idev: DeviceObject,
  options: HwptNestedOptions,
): HwptNestedObject | Failure {
  const { iommu } = idev.hostDevice;
  const parentDomain = parent.domain as IommuDomain;
  const hwpt = new HwptNestedObject(parent);
  const full = ctx.objects.allocate(hwpt);
  if (full !== undefined) {
    hwpt.destroy();
    return full;
  }
  hwpt.pasidCompat = options.pasid;
  const got = iommu.allocDomain({
    type: 'nested',
    parent: parentDomain,
    dataType: options.dataType,
    data: options.data,
    pasid: options.pasid,
    iopf: options.iopf,
  });
  if (!got.ok) {
    ctx.objects.abort(hwpt);
    return { errno: got.errno, reason: `${iommu.name}: ${got.reason}` };
  }
  hwpt.domain = got.value;
  return hwpt;
}
