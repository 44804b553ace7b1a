/**
 * An AMD-Vi protection domain as Linux 6.17 makes them: blocked, identity
 * (Mode 0 pass-through), a v1 paging domain, or a PASID-capable v2 paging
 * domain (an x86-64 table reached through the devices' GCR3 tables), tagged
 * by its DomainID. Map and unmap go to the table and then flush as
 * amd_iommu_iotlb_sync does (v2: per device and PASID, with GN set); a v1
 * table that grew a level makes the IOMMU rewrite the DTEs pointing at it.
 */
import { EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import type { AmdV1PageTable } from '../../pagetable/amd-v1.js';
import type { DirtyBitmap } from '../../pagetable/format.js';
import type { X86PageTable } from '../../pagetable/x86-64.js';
import type { DomainGeometry, DomainType, IommuDomain, IommuInstance } from '../iommu.js';

/** What a domain asks of the IOMMU that owns it. */
export interface AmdDomainOwner extends IommuInstance {
  /** Rewrite the DTEs of the devices attached to `domain` (root, Mode or HAD changed) and flush. */
  refreshDomain(domain: AmdDomain): void;
  /** Flush [iova, iova+size) of `domain` from the IOTLB and device TLBs, as the driver's iotlb_sync. */
  flushDomainPages(domain: AmdDomain, iova: number, size: number): void;
  /** Give back the DomainID of a freed domain. */
  releaseDomain(domain: AmdDomain): void;
}

/** An AMD-Vi domain. */
export class AmdDomain implements IommuDomain {
  readonly parent = null;
  readonly nestParent = false;
  /** RIDs of the devices whose DTE points here. */
  readonly devices = new Set<number>();
  /** PASID attachments of a v2 domain, as `rid * 2^20 + pasid`. */
  readonly pasidAttachments = new Set<number>();
  private tracking = false;
  private freed = false;

  constructor(
    /** The IOMMU that owns it. */
    readonly iommu: AmdDomainOwner,
    /** Blocked, identity or paging. */
    readonly type: DomainType,
    /** The DomainID (0 for the blocked domain). */
    readonly tag: number,
    /** The v1 table of a paging domain, or the x86-64 (v2) table of a PASID-capable one. */
    readonly pageTable: AmdV1PageTable | X86PageTable | null,
    /** Aperture and page sizes. */
    readonly geometry: DomainGeometry,
    /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
    readonly dirtyCapable: boolean,
    /** Allocated with a fault object (faults become PPR page requests). */
    readonly iopfCapable: boolean,
    /** Allocated with IOMMU_HWPT_ALLOC_PASID: a v2 (x86-64) table, attachable to PASIDs. */
    readonly pasidCapable: boolean = false,
  ) {}

  get dirtyTracking(): boolean {
    return this.tracking;
  }

  map(iova: number, pa: number, length: number, prot: number): number {
    const table = this.pageTable;
    if (table === null) return -EOPNOTSUPP;
    const root = table.root;
    const levels = table.levels;
    const r = table.map(iova, pa, length, prot);
    // increase_address_space (v1 only): a new root goes into every DTE, then a flush.
    if (table.root !== root || table.levels !== levels) this.iommu.refreshDomain(this);
    return r;
  }

  unmap(iova: number, length: number): number {
    const table = this.pageTable;
    if (table === null) return 0;
    const r = table.unmap(iova, length);
    if (r > 0) this.iommu.flushDomainPages(this, iova, r);
    return r;
  }

  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyCapable) return -EOPNOTSUPP;
    if (enable === this.tracking) return 0;
    this.tracking = enable;
    // amd_iommu_set_dirty_tracking: HAD in every DTE, then flush them and the domain.
    this.iommu.refreshDomain(this);
    return 0;
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    const table = this.pageTable;
    if (table === null || !this.dirtyCapable) return -EOPNOTSUPP;
    const n = table.readAndClearDirty(iova, length, bitmap, noClear);
    if (n > 0 && !noClear) this.iommu.flushDomainPages(this, iova, length);
    return n;
  }

  free(): void {
    if (this.freed || this.type === 'blocked' || this.type === 'identity') return;
    this.freed = true;
    this.pageTable?.free();
    this.iommu.releaseDomain(this);
  }
}
