/**
 * One open /dev/iommu (struct iommufd_ctx): its object table and its
 * accounting mode. It lives while any fd refers to it or any bound device
 * holds it, and its release destroys every object and unpins every page.
 */
import type { AccountMode } from './accounting.js';
import type { Host } from './host.js';
import type { IoasObject } from './ioas.js';
import { MmapRegions } from './mmap-regions.js';
import { ObjectTable } from './objects.js';

/** An open /dev/iommu. */
export class IommufdContext {
  /** Its objects. */
  readonly objects = new ObjectTable();
  /** Regions drivers published for mmap on this iommufd (vIOMMU pages). */
  readonly mmaps = new MmapRegions();
  /** IOMMU_OPTION_RLIMIT_MODE: 'user' (0) or 'mm' (1). */
  accountMode: AccountMode = 'user';
  /** The IOAS of the VFIO compatibility ioctls (IOMMU_VFIO_IOAS), if set. */
  vfioIoas: IoasObject | null = null;
  /** Open file descriptions and bound devices that keep it alive. */
  private holders = 0;
  /** True once released. */
  released = false;

  constructor(
    /** The host. */
    readonly host: Host,
  ) {}

  /** Another fd or device refers to it. */
  hold(): void {
    this.holders++;
  }

  /** One holder is gone; the last one tears everything down. */
  release(): void {
    this.holders--;
    if (this.holders > 0 || this.released) return;
    this.released = true;
    this.vfioIoas = null;
    this.objects.destroyAll();
  }
}
