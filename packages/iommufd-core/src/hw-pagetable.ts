/**
 * HWPT_PAGING objects (hw_pagetable.c): a paging domain of one IOMMU, built
 * on an IOAS whose areas it maps. Automatic ones are made by attaching a
 * device to an IOAS, reused by later devices that accept them, and freed
 * when their last device leaves. (IOMMU_HWPT_ALLOC and nested HWPTs come
 * with part 2 of the model.)
 */
import type { IommuDomain } from '@iommufd-sim/hw-models';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import type { Failure } from './io-pagetable.js';
import type { IoasObject } from './ioas.js';
import { IommufdObject } from './objects.js';

/** What a paging HWPT is allocated with. */
export interface HwptPagingOptions {
  /** Made by attaching a device to an IOAS (freed with its last device). */
  readonly auto: boolean;
  readonly nestParent?: boolean;
  readonly dirtyTracking?: boolean;
  readonly pasid?: boolean;
}

/** A paging HWPT. */
export class HwptPagingObject extends IommufdObject {
  readonly type = 'HWPT_PAGING' as const;
  /** The hardware domain (null until allocated). */
  domain: IommuDomain | null = null;
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
    this.domain?.free();
    this.domain = null;
    this.ioas.users--;
  }
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
  const { iommu, device } = idev.hostDevice;
  const got = iommu.allocDomain({
    type: 'paging',
    device,
    nestParent: options.nestParent === true,
    dirtyTracking: options.dirtyTracking === true,
    pasid: options.pasid === true,
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
