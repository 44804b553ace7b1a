/**
 * VT-d domains as the 6.17 Intel driver builds them: blocked, identity
 * (pass-through), first-stage or second-stage paging, and nested (a guest's
 * first-stage table over a nest-parent second stage). Each carries its DID;
 * map/unmap/dirty operations go to the page table and then flush the caches
 * the way the driver's cache tags do, through the instance's queue.
 */
import { EINVAL, EOPNOTSUPP, IOMMU_VTD_INV_FLAGS_LEAF } from '@iommufd-sim/uapi-types';
import { type DirtyBitmap, IOMMU_WRITE, type PageTable } from '../../pagetable/format.js';
import type { VtdSecondStagePageTable } from '../../pagetable/vtd-second-stage.js';
import type { DomainGeometry, DomainType, HwResult, IommuDomain } from '../iommu.js';
import type { VtdIommu } from './vtd-iommu.js';

/** Which translation a VT-d domain programs into a PASID entry. */
export type VtdStage = 'blocked' | 'pass-through' | 'first' | 'second' | 'nested';

/** The guest's stage-1 configuration of a nested domain (struct iommu_hwpt_vtd_s1). */
export interface VtdStage1Config {
  /** IOMMU_VTD_S1_SRE / EAFE / WPE. */
  readonly flags: number;
  /** Guest physical address of the guest's top-level first-stage table. */
  readonly pgtblAddr: number;
  /** 48 (4-level) or 57 (5-level). */
  readonly addrWidth: number;
}

/** Where a domain is attached: a device's RID (pasid -1) or one of its PASIDs. */
export interface VtdAttachment {
  /** Requester id. */
  readonly rid: number;
  /** PASID, or -1 for the RID (programmed as RID_PASID 0). */
  readonly pasid: number;
}

const U64_MAX = (1n << 64n) - 1n;

/** A VT-d domain. */
export class VtdDomain implements IommuDomain {
  /** Where it is attached, by `${rid}:${pasid}`. */
  readonly attachments = new Map<string, VtdAttachment>();
  /** Nested domains built on this nest parent. */
  readonly children = new Set<VtdDomain>();
  private tracking = false;
  private freed = false;

  constructor(
    readonly iommu: VtdIommu,
    readonly type: DomainType,
    /** The PASID-entry translation type it programs. */
    readonly stage: VtdStage,
    /** The DID (domain id) its cache entries are tagged with. */
    readonly tag: number,
    readonly pageTable: PageTable | null,
    readonly geometry: DomainGeometry,
    readonly parent: VtdDomain | null,
    readonly nestParent: boolean,
    readonly dirtyCapable: boolean,
    readonly pasidCapable: boolean,
    readonly iopfCapable: boolean,
    /** The guest stage-1 configuration (nested domains). */
    readonly stage1: VtdStage1Config | null = null,
  ) {}

  get dirtyTracking(): boolean {
    return this.tracking;
  }

  map(iova: number, pa: number, length: number, prot: number): number {
    if (this.pageTable === null || this.freed) return -EINVAL;
    // ERRATA_772415_SPR17: a nest parent may not hold read-only mappings.
    if (this.nestParent && (prot & IOMMU_WRITE) === 0) return -EINVAL;
    return this.pageTable.map(iova, pa, length, prot);
  }

  unmap(iova: number, length: number): number {
    if (this.pageTable === null || this.freed) return 0;
    const removed = this.pageTable.unmap(iova, length);
    if (removed > 0) {
      // A large leaf the range only partly covered went whole: flush its whole extent.
      const start = removed > length ? Math.floor(iova / 2 ** 30) * 2 ** 30 : iova;
      const end = removed > length ? Math.ceil((iova + length) / 2 ** 30) * 2 ** 30 : iova + length;
      this.iommu.flushDomainRange(this, start, end - start, false);
    }
    return removed;
  }

  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyCapable || this.pageTable === null) return -EOPNOTSUPP;
    if (this.tracking === enable) return 0;
    this.tracking = enable;
    (this.pageTable as VtdSecondStagePageTable).setDirtyTracking(enable);
    this.iommu.reprogramDirtyTracking(this);
    return 0;
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    if (!this.dirtyCapable || this.pageTable === null) return -EOPNOTSUPP;
    if (!this.tracking) return -EINVAL;
    const n = this.pageTable.readAndClearDirty(iova, length, bitmap, noClear);
    if (!noClear && n > 0) this.iommu.flushDomainRange(this, iova, length, false);
    return n;
  }

  /**
   * IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 for one entry, as intel_nested_cache_invalidate_user
   * checks it: unknown flags -EOPNOTSUPP; addr not 4 KiB aligned, or npages
   * U64_MAX with a non-zero addr, -EINVAL; then the PASID-based IOTLB (and
   * device TLBs) of every attachment are flushed. addr 0 with npages U64_MAX
   * flushes everything.
   */
  invalidateUser(addr: bigint, npages: bigint, flags: number): HwResult<void> {
    if (this.type !== 'nested') {
      return {
        ok: false,
        errno: EINVAL,
        reason: 'only a nested domain takes stage-1 invalidations',
      };
    }
    if ((flags & ~IOMMU_VTD_INV_FLAGS_LEAF) !== 0) {
      return {
        ok: false,
        errno: EOPNOTSUPP,
        reason: `unknown invalidation flags 0x${flags.toString(16)}`,
      };
    }
    if (addr % 4096n !== 0n || (npages === U64_MAX && addr !== 0n)) {
      return {
        ok: false,
        errno: EINVAL,
        reason: `addr 0x${addr.toString(16)} is not 4 KiB aligned, or npages U64_MAX with a non-zero addr`,
      };
    }
    const leaf = (flags & IOMMU_VTD_INV_FLAGS_LEAF) !== 0;
    if (npages === U64_MAX) this.iommu.flushDomainRange(this, 0, -1, leaf);
    else if (npages > 0n) {
      const start = Number(addr);
      const length = Number(npages) * 4096;
      if (start + length > Number.MAX_SAFE_INTEGER) this.iommu.flushDomainRange(this, 0, -1, leaf);
      else this.iommu.flushDomainRange(this, start, length, leaf);
    }
    return { ok: true, value: undefined };
  }

  free(): void {
    if (this.freed || this.stage === 'blocked' || this.stage === 'pass-through') return;
    this.freed = true;
    this.pageTable?.free();
    this.parent?.children.delete(this);
    this.iommu.releaseDid(this.tag);
  }
}
