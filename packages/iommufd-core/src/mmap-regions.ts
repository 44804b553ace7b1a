/**
 * The regions a context's drivers publish for mmap on the iommufd
 * (ictx->mt_mmap and iommufd_fops_mmap): each gets the lowest free
 * page-aligned offset that fits it, and mmap must name exactly that offset
 * and length (ENXIO otherwise). A mapping holds its owner object until the
 * last page of it is unmapped, so the owner cannot be destroyed meanwhile.
 */
import { PAGE_SIZE } from './address-space.js';
import type { IommufdObject } from './objects.js';

/** One published region. */
export interface MmapRegionEntry {
  /** The mmap offset the user passes. */
  readonly offset: bigint;
  /** Its length in bytes (page multiple). */
  readonly length: number;
  /** What the mapping shows. */
  readonly contents: Uint8Array;
  /** The object a live mapping keeps alive. */
  readonly owner: IommufdObject;
  /** Live mappings of it (each holds the owner once while > 0). */
  mappings: number;
}

/** A context's published regions. */
export class MmapRegions {
  private readonly regions: MmapRegionEntry[] = [];

  /** iommufd_viommu_alloc_mmap: publish `contents` for `owner` at the lowest offset that fits. */
  add(owner: IommufdObject, contents: Uint8Array, length: number): MmapRegionEntry {
    const bytes = Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
    let offset = 0n;
    for (const r of this.regions) {
      if (offset + BigInt(bytes) <= r.offset) break;
      offset = r.offset + BigInt(r.length);
    }
    const entry: MmapRegionEntry = { offset, length: bytes, contents, owner, mappings: 0 };
    this.regions.push(entry);
    this.regions.sort((a, b) => (a.offset < b.offset ? -1 : 1));
    return entry;
  }

  /** iommufd_viommu_destroy_mmap. */
  remove(entry: MmapRegionEntry): void {
    const i = this.regions.indexOf(entry);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** The region mmap(offset, length) maps, or undefined (ENXIO). */
  lookup(offset: bigint, length: number): MmapRegionEntry | undefined {
    const r = this.regions.find((x) => x.offset === offset);
    return r !== undefined && r.length === length ? r : undefined;
  }

  /** Every region, by offset. */
  all(): readonly MmapRegionEntry[] {
    return this.regions;
  }
}
