/**
 * The x86-64 paging format ('x86-64'), used by VT-d first-stage translation
 * and AMD-Vi v2 tables: 4 (48-bit) or 5 (57-bit) levels, 4 KiB, 2 MiB and
 * 1 GiB leaves, P/RW/US/A/D/PS/XD bits. Input addresses must be canonical;
 * with addresses below 2^53 only the lower half is representable, so any
 * address at or above 2^47 (2^56 with 5 levels) is non-canonical.
 *
 * Also exports the radix machinery it shares with the VT-d second stage.
 */
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_WRITE,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  type PageTableOptions,
  type TranslationFault,
} from './format.js';
import { RadixPageTable } from './x86-radix.js';

export {
  RADIX_PS,
  type RadixEncoding,
  type RadixOptions,
  RadixPageTable,
  radixLevelSize,
} from './x86-radix.js';

/** x86 entry bit: present. */
export const X86_P = 1 << 0;
/** x86 entry bit: writable. */
export const X86_RW = 1 << 1;
/** x86 entry bit: user (clear: supervisor only). */
export const X86_US = 1 << 2;
/** x86 entry bit: accessed. */
export const X86_A = 1 << 5;
/** x86 entry bit: dirty (leaves). */
export const X86_D = 1 << 6;
/** x86 entry bit: page size (2 MiB leaf in a PDE, 1 GiB in a PDPE). */
export const X86_PS = 1 << 7;
/** x86 entry bit 63, execute disable, as a bit of the high word. */
export const X86_XD_HI = 0x80000000;

/** How an {@link X86PageTable} is created. */
export interface X86PageTableOptions extends PageTableOptions {
  /** 4 (48-bit, the default) or 5 (57-bit) levels. */
  readonly levels?: 4 | 5;
  /** Leaf sizes map may use (a subset of 4K/2M/1G; default all three). */
  readonly pageSizes?: readonly number[];
  /** Output address width. Default 52. */
  readonly outputBits?: number;
}

/**
 * An x86-64 page table in simulated memory. Permissions combine down the
 * walk: RW and US are ANDed, XD is ORed. A user access (no ACCESS_PRIV) needs
 * US everywhere; a write needs RW everywhere (supervisor writes too, as with
 * VT-d WPE or CR0.WP set); an instruction fetch needs XD clear everywhere.
 * With ACCESS_UPDATE_AD, A is set on every entry walked and D on a leaf written.
 */
export class X86PageTable extends RadixPageTable {
  constructor(options: X86PageTableOptions = {}) {
    const levels = options.levels ?? 4;
    if (levels !== 4 && levels !== 5)
      throw new RangeError(`x86-64: levels must be 4 or 5, got ${levels}`);
    const inputBits = 12 + 9 * levels;
    super(
      {
        format: 'x86-64',
        presentMask: X86_P,
        tableBits: X86_P | X86_RW | X86_US | X86_A,
        accessedBit: X86_A,
        dirtyBit: X86_D,
      },
      {
        levels,
        inputBits,
        inputLimit: 2 ** (inputBits - 1),
        outputBits: options.outputBits ?? 52,
        pageSizes: options.pageSizes ?? [4096, 2 ** 21, 2 ** 30],
        allocator: options.allocator,
        memory: options.memory,
        root: options.root,
      },
    );
  }

  protected leafFlags(prot: number): { lo: number; hi: number } | null {
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) return null;
    const write = (prot & IOMMU_WRITE) !== 0;
    return {
      // Linux's first-stage leaf: P|U|A, plus RW|D when writable (D preset so a write needs no update).
      lo: X86_P | X86_A | (write ? X86_RW | X86_D : 0) | ((prot & IOMMU_PRIV) !== 0 ? 0 : X86_US),
      hi: (prot & IOMMU_NOEXEC) !== 0 ? X86_XD_HI : 0,
    };
  }

  protected checkAccess(andLo: number, orHi: number, access: number): TranslationFault | null {
    if ((access & ACCESS_WRITE) !== 0 && (andLo & X86_RW) === 0) return 'permission';
    if ((access & ACCESS_PRIV) === 0 && (andLo & X86_US) === 0) return 'permission';
    if ((access & ACCESS_EXEC) !== 0 && (orHi & X86_XD_HI) !== 0) return 'permission';
    return null;
  }

  protected protOf(andLo: number, orHi: number): number {
    return (
      IOMMU_READ |
      ((andLo & X86_RW) !== 0 ? IOMMU_WRITE : 0) |
      ((andLo & X86_US) === 0 ? IOMMU_PRIV : 0) |
      ((orHi & X86_XD_HI) !== 0 ? IOMMU_NOEXEC : 0)
    );
  }

  protected inputFault(): TranslationFault {
    return 'non-canonical';
  }
}
