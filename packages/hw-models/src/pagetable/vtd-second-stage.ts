/**
 * The Intel VT-d second-stage page table ('vtd-ss'): 3, 4 or 5 levels of
 * 512 entries (39-, 48- or 57-bit input), 4 KiB leaves and, per CAP.SSLPS,
 * 2 MiB and 1 GiB leaves. No present bit: an entry is present when R (bit 0)
 * or W (bit 1) is set, and R/W must be granted at every level (Linux writes
 * R|W into every non-leaf entry). With SSADE in the PASID entry the hardware
 * sets A (bit 8) on every entry it walks and D (bit 9) on a leaf it writes.
 */
import { IOMMU_READ, IOMMU_WRITE, type PageTableOptions, type TranslationFault } from './format.js';
import { RadixPageTable } from './x86-radix.js';

/** SS entry bit: read allowed. */
export const VTD_SS_R = 1 << 0;
/** SS entry bit: write allowed. */
export const VTD_SS_W = 1 << 1;
/** SS entry bit: execute allowed (with execute-request support; unused by Linux). */
export const VTD_SS_X = 1 << 2;
/** SS entry bit: page size (a 2 MiB leaf at level 2, 1 GiB at level 3). */
export const VTD_SS_PS = 1 << 7;
/** SS entry bit: accessed (hardware-set when SSADE). */
export const VTD_SS_A = 1 << 8;
/** SS entry bit: dirty (hardware-set on a write when SSADE). */
export const VTD_SS_D = 1 << 9;
/** SS entry bit: snoop override. */
export const VTD_SS_SNP = 1 << 11;

/** How a {@link VtdSecondStagePageTable} is created. */
export interface VtdSecondStageOptions extends PageTableOptions {
  /** 3 (39-bit), 4 (48-bit, the default) or 5 (57-bit) levels. */
  readonly levels?: 3 | 4 | 5;
  /** Leaf sizes map may use (a subset of 4K/2M/1G; default all three). */
  readonly pageSizes?: readonly number[];
  /** Output width = the host address width (HAW); entries above it are reserved. Default 52. */
  readonly outputBits?: number;
  /** Hardware A/D updates (SSADE) on from the start. Default false. */
  readonly dirtyTracking?: boolean;
}

/** The VT-d second-stage table in simulated memory. */
export class VtdSecondStagePageTable extends RadixPageTable {
  constructor(options: VtdSecondStageOptions = {}) {
    const levels = options.levels ?? 4;
    if (levels !== 3 && levels !== 4 && levels !== 5) {
      throw new RangeError(`vtd-ss: levels must be 3, 4 or 5, got ${levels}`);
    }
    const inputBits = 12 + 9 * levels;
    super(
      {
        format: 'vtd-ss',
        presentMask: VTD_SS_R | VTD_SS_W,
        tableBits: VTD_SS_R | VTD_SS_W,
        accessedBit: VTD_SS_A,
        dirtyBit: VTD_SS_D,
      },
      {
        levels,
        inputBits,
        inputLimit: 2 ** inputBits,
        outputBits: options.outputBits ?? 52,
        pageSizes: options.pageSizes ?? [4096, 2 ** 21, 2 ** 30],
        allocator: options.allocator,
        memory: options.memory,
        root: options.root,
      },
    );
    this.adEnabled = options.dirtyTracking ?? false;
  }

  /** True while walks set A and D (SSADE). */
  get dirtyTracking(): boolean {
    return this.adEnabled;
  }

  /** Turn hardware A/D updates on or off, as the PASID entry's SSADE does. */
  setDirtyTracking(enable: boolean): void {
    this.adEnabled = enable;
  }

  protected leafFlags(prot: number): { lo: number; hi: number } | null {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return null;
    return {
      lo: ((prot & IOMMU_READ) !== 0 ? VTD_SS_R : 0) | ((prot & IOMMU_WRITE) !== 0 ? VTD_SS_W : 0),
      hi: 0,
    };
  }

  protected checkAccess(andLo: number, _orHi: number, access: number): TranslationFault | null {
    // ACCESS_READ = 1 = R and ACCESS_WRITE = 2 = W: the request needs its bits on every level.
    return (access & 3 & ~andLo) !== 0 ? 'permission' : null;
  }

  protected protOf(andLo: number): number {
    return (
      ((andLo & VTD_SS_R) !== 0 ? IOMMU_READ : 0) | ((andLo & VTD_SS_W) !== 0 ? IOMMU_WRITE : 0)
    );
  }

  protected inputFault(): TranslationFault {
    return 'address-size';
  }
}
