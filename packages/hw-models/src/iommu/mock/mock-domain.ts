/**
 * The domains of the iommufd selftest mock driver (Linux 6.17 selftest.c):
 * the blocking domain every device starts on, mock paging domains (a slot
 * table, per-domain dirty tracking flag) and mock nested domains (four IOTLB
 * words a test can check and invalidate).
 */
import { EINVAL, EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import type { DirtyBitmap } from '../../pagetable/format.js';
import type { MockPageTable } from '../../pagetable/mock.js';
import type { DomainGeometry, IommuDomain, IommuInstance } from '../iommu.js';

/** What a mock domain without a table of its own answers to map, unmap and dirty tracking. */
abstract class MockTablelessDomain {
  map(): number {
    return -EOPNOTSUPP;
  }

  unmap(): number {
    return 0;
  }

  setDirtyTracking(): number {
    return -EOPNOTSUPP;
  }

  readAndClearDirty(): number {
    return -EOPNOTSUPP;
  }

  free(): void {}
}

/** The mock's blocking domain (its default domain too): attach does nothing. */
export class MockBlockedDomain extends MockTablelessDomain implements IommuDomain {
  readonly type = 'blocked' as const;
  readonly tag = 0;
  readonly pageTable = null;
  readonly parent = null;
  readonly nestParent = false;
  readonly dirtyCapable = false;
  readonly dirtyTracking = false;
  readonly pasidCapable = true;
  readonly iopfCapable = false;

  constructor(
    /** The mock IOMMU. */
    readonly iommu: IommuInstance,
    /** The mock aperture. */
    readonly geometry: DomainGeometry,
  ) {
    super();
  }
}

/** A mock paging domain (IOMMU_DOMAIN_UNMANAGED): the slot table and the MOCK_DIRTY_TRACK flag. */
export class MockPagingDomain implements IommuDomain {
  readonly type = 'paging' as const;
  readonly parent = null;
  private tracking = false;

  constructor(
    /** The mock IOMMU. */
    readonly iommu: IommuInstance,
    /** A number for reports (the mock has no hardware tag). */
    readonly tag: number,
    /** The slots. */
    readonly pageTable: MockPageTable,
    /** Aperture [16 MiB, 2 GiB-1] and 2 KiB (+1 MiB) pages. */
    readonly geometry: DomainGeometry,
    /** Allocated with IOMMU_HWPT_ALLOC_NEST_PARENT. */
    readonly nestParent: boolean,
    /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (it has dirty_ops). */
    readonly dirtyCapable: boolean,
    /** Allocated with IOMMU_HWPT_ALLOC_PASID. */
    readonly pasidCapable: boolean,
    /** Allocated with a fault object. */
    readonly iopfCapable: boolean,
  ) {}

  get dirtyTracking(): boolean {
    return this.tracking;
  }

  map(iova: number, pa: number, length: number, prot: number): number {
    return this.pageTable.map(iova, pa, length, prot);
  }

  unmap(iova: number, length: number): number {
    return this.pageTable.unmap(iova, length);
  }

  /** mock_domain_set_dirty_tracking; a domain without dirty_ops gets the core's -EOPNOTSUPP. */
  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyCapable) return -EOPNOTSUPP;
    this.tracking = enable;
    return 0;
  }

  /** mock_domain_read_and_clear_dirty: -EINVAL while tracking is off (the bitmap is always given here). */
  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    if (!this.dirtyCapable) return -EOPNOTSUPP;
    if (!this.tracking) return -EINVAL;
    return this.pageTable.readAndClearDirty(iova, length, bitmap, noClear);
  }

  free(): void {
    this.pageTable.free();
  }
}

/** A mock nested domain: IOMMU_HWPT_DATA_SELFTEST data, four IOTLB words. */
export class MockNestedDomain extends MockTablelessDomain implements IommuDomain {
  readonly type = 'nested' as const;
  readonly pageTable = null;
  readonly nestParent = false;
  readonly dirtyCapable = false;
  readonly dirtyTracking = false;
  /** The MOCK_NESTED_DOMAIN_IOTLB_NUM words, all starting at the allocation's `iotlb`. */
  readonly iotlb: Uint32Array;

  constructor(
    /** The mock IOMMU. */
    readonly iommu: IommuInstance,
    /** A number for reports. */
    readonly tag: number,
    /** The nest parent. */
    readonly parent: MockPagingDomain,
    /** The value of `struct iommu_hwpt_selftest.iotlb`. */
    iotlb: number,
    /** Allocated with IOMMU_HWPT_ALLOC_PASID. */
    readonly pasidCapable: boolean,
    /** Allocated with a fault object. */
    readonly iopfCapable: boolean,
  ) {
    super();
    this.iotlb = new Uint32Array(4).fill(iotlb);
  }

  get geometry(): DomainGeometry {
    return this.parent.geometry;
  }
}
