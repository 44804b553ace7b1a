/**
 * SMMUv3 domains as the Linux 6.17 driver has them: blocked and identity
 * (abort and bypass STEs), paging domains at stage 1 (tagged by an ASID) or
 * stage 2 (tagged by a VMID, the nesting parent), and nested domains (a
 * guest vSTE over a stage-2 parent). Map/unmap/dirty go to the page table;
 * the flushes the driver issues afterwards go through the SMMU's command queue.
 */
import { EOPNOTSUPP } from '@iommufd-sim/uapi-types';
import type { ArmLpaePageTable } from '../../pagetable/arm-lpae-table.js';
import type { DirtyBitmap } from '../../pagetable/format.js';
import type { DomainGeometry, DomainType, IommuDomain } from '../iommu.js';
import type { CheckedVste } from './ste.js';

/** What the SMMU does for a domain's map/unmap/dirty calls (implemented by the instance). */
export interface Smmuv3DomainOwner {
  /** Invalidate the IOTLB (and ATCs) for [iova, iova+size) of `domain`, as the driver's unmap path does. */
  flushDomainRange(domain: Smmuv3Domain, iova: number, size: number): void;
  /** Release the domain's tag and tables. */
  releaseDomain(domain: Smmuv3Domain): void;
}

/** How a {@link Smmuv3Domain} is made. */
export interface Smmuv3DomainInit {
  readonly iommu: IommuDomain['iommu'] & Smmuv3DomainOwner;
  readonly type: DomainType;
  readonly stage: 0 | 1 | 2;
  readonly asid: number;
  readonly vmid: number;
  readonly pageTable: ArmLpaePageTable | null;
  readonly geometry: DomainGeometry;
  readonly parent: Smmuv3Domain | null;
  readonly nestParent: boolean;
  readonly dirtyCapable: boolean;
  readonly pasidCapable: boolean;
  readonly iopfCapable: boolean;
  readonly vste: CheckedVste | null;
}

/** An SMMUv3 domain. */
export class Smmuv3Domain implements IommuDomain {
  readonly iommu: IommuDomain['iommu'];
  readonly type: DomainType;
  /** 1 (ASID-tagged), 2 (VMID-tagged), or 0 for blocked/identity/nested. */
  readonly stage: 0 | 1 | 2;
  /** ASID of a stage-1 domain (0 otherwise). */
  readonly asid: number;
  /** VMID of a stage-2 domain, or of a nested domain's parent (0 otherwise). */
  readonly vmid: number;
  readonly pageTable: ArmLpaePageTable | null;
  readonly geometry: DomainGeometry;
  readonly parent: Smmuv3Domain | null;
  readonly nestParent: boolean;
  readonly dirtyCapable: boolean;
  readonly pasidCapable: boolean;
  readonly iopfCapable: boolean;
  /** The checked guest STE words of a nested domain. */
  readonly vste: CheckedVste | null;
  private dirtyOn = false;
  private released = false;
  private readonly owner: Smmuv3DomainOwner;

  constructor(init: Smmuv3DomainInit) {
    this.iommu = init.iommu;
    this.owner = init.iommu;
    this.type = init.type;
    this.stage = init.stage;
    this.asid = init.asid;
    this.vmid = init.vmid;
    this.pageTable = init.pageTable;
    this.geometry = init.geometry;
    this.parent = init.parent;
    this.nestParent = init.nestParent;
    this.dirtyCapable = init.dirtyCapable;
    this.pasidCapable = init.pasidCapable;
    this.iopfCapable = init.iopfCapable;
    this.vste = init.vste;
  }

  /** The cache tag: the ASID of a stage-1 domain, the VMID of a stage-2 or nested one. */
  get tag(): number {
    return this.stage === 1 ? this.asid : this.vmid;
  }

  get dirtyTracking(): boolean {
    return this.dirtyOn;
  }

  /** True once {@link free} ran. */
  get isFreed(): boolean {
    return this.released;
  }

  map(iova: number, pa: number, length: number, prot: number): number {
    if (this.pageTable === null) return -EOPNOTSUPP;
    return this.pageTable.map(iova, pa, length, prot);
  }

  unmap(iova: number, length: number): number {
    if (this.pageTable === null) return 0;
    const removed = this.pageTable.unmap(iova, length);
    if (removed > 0) this.owner.flushDomainRange(this, iova, removed);
    return removed;
  }

  /** The driver keeps HTTU on for the domain's life (arm_smmu_set_dirty_tracking returns 0). */
  setDirtyTracking(enable: boolean): number {
    if (!this.dirtyCapable) return -EOPNOTSUPP;
    this.dirtyOn = enable;
    return 0;
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    if (!this.dirtyCapable || this.pageTable === null) return -EOPNOTSUPP;
    const n = this.pageTable.readAndClearDirty(iova, length, bitmap, noClear);
    // Cleared leaves may sit writable in the TLB: flush them, as iommufd's gather does.
    if (n > 0 && !noClear) this.owner.flushDomainRange(this, iova, length);
    return n;
  }

  free(): void {
    if (this.released || this.type === 'blocked' || this.type === 'identity') return;
    this.released = true;
    this.owner.releaseDomain(this);
  }
}
