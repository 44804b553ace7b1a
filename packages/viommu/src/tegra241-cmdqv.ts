/**
 * NVIDIA Tegra241 CMDQV (the SMMUv3 implementation with virtual command
 * queues), as far as the 6.17 uAPI shows it. The host has a number of
 * VINTFs; VINTF0 stays with the kernel and each IOMMU_VIOMMU_ALLOC of type
 * TEGRA241_CMDQV takes the next free one (ENOSPC when none is left) and
 * publishes its 64 KiB page 0 for mmap. Each vDEVICE takes one of the
 * VINTF's SID_MATCH / SID_REPLACE register pairs (ENOSPC when all are used;
 * a virt_id above 2^32 - 1 is EINVAL). HW queues (LVCMDQs) are guest memory
 * the hardware reads directly: indexes in rising order below the LVCMDQs per
 * VINTF, a power-of-two length from 32 bytes to 2^IDR1.CMDQS entries of 16
 * bytes, and a base aligned to that length.
 */
import { EINVAL, ENOSPC, structs } from '@iommufd-sim/uapi-types';

/** How a Tegra241 CMDQV is configured. */
export interface Tegra241CmdqvConfig {
  /** VINTFs in the hardware, VINTF0 (the kernel's) included. Default 4. */
  readonly vintfs?: number;
  /** LVCMDQs each VINTF may map. Default 2. */
  readonly lvcmdqsPerVintf?: number;
  /** SID_MATCH / SID_REPLACE pairs per VINTF. Default 16. */
  readonly sidsPerVintf?: number;
}

/** The size of a VINTF's page 0, which the guest maps. */
export const TEGRA241_VINTF_PAGE_BYTES = 0x10000;

/** An SMMUv3 command is 16 bytes (CMDQ_ENT_SZ_SHIFT = 4). */
const CMDQ_ENTRY_SHIFT = 4;

/** The CMDQV of one SMMU: VINTF and SID-slot allocation and the LVCMDQ checks. */
export class Tegra241Cmdqv {
  readonly vintfs: number;
  readonly lvcmdqsPerVintf: number;
  readonly sidsPerVintf: number;
  private readonly vintfInUse: boolean[];

  constructor(config: Tegra241CmdqvConfig = {}) {
    this.vintfs = config.vintfs ?? 4;
    this.lvcmdqsPerVintf = config.lvcmdqsPerVintf ?? 2;
    this.sidsPerVintf = config.sidsPerVintf ?? 16;
    for (const [name, v] of [
      ['vintfs', this.vintfs],
      ['lvcmdqsPerVintf', this.lvcmdqsPerVintf],
      ['sidsPerVintf', this.sidsPerVintf],
    ] as const) {
      if (!(Number.isInteger(v) && v >= 1 && v <= 128 && (v & (v - 1)) === 0)) {
        throw new RangeError(
          `Tegra241 CMDQV ${name} must be a power of two from 1 to 128, not ${v}`,
        );
      }
    }
    this.vintfInUse = new Array<boolean>(this.vintfs).fill(false);
    this.vintfInUse[0] = true; // VINTF0 is the kernel's
  }

  /** iommu_hw_info_tegra241_cmdqv as bytes (version 1, log2 of queues and SIDs per VINTF). */
  hwInfo(): Uint8Array {
    return structs.iommu_hw_info_tegra241_cmdqv.encode({
      flags: 0,
      version: 1,
      log2vcmdqs: Math.log2(this.lvcmdqsPerVintf),
      log2vsids: Math.log2(this.sidsPerVintf),
    });
  }

  /** tegra241_cmdqv_init_vintf: the index of a free VINTF, or ENOSPC. */
  allocVintf(): number | { readonly errno: number; readonly reason: string } {
    for (let i = this.vintfs - 1; i >= 1; i--) {
      if (!this.vintfInUse[i]) {
        this.vintfInUse[i] = true;
        return i;
      }
    }
    return {
      errno: ENOSPC,
      reason: `all ${this.vintfs - 1} user VINTFs of the Tegra241 CMDQV are in use`,
    };
  }

  /** Give a VINTF back. */
  releaseVintf(index: number): void {
    if (index >= 1 && index < this.vintfs) this.vintfInUse[index] = false;
  }

  /**
   * The LVCMDQ geometry checks of tegra241_vintf_alloc_lvcmdq_user: EINVAL
   * with the reason, or undefined. `cmdqsLog2` is IDR1.CMDQS of the SMMU.
   */
  lvcmdqProblem(
    length: number,
    basePa: number,
    cmdqsLog2: number,
  ): { readonly errno: number; readonly reason: string } | undefined {
    const max = 2 ** (cmdqsLog2 + CMDQ_ENTRY_SHIFT);
    if (!(length >= 32 && length <= max && Number.isInteger(Math.log2(length)))) {
      return {
        errno: EINVAL,
        reason: `length ${length} must be a power of two from 32 to ${max} bytes (2^IDR1.CMDQS commands)`,
      };
    }
    // VCMDQ_ADDR is bits 47:5: a base above them is refused like a misaligned one.
    if (basePa % length !== 0 || basePa >= 2 ** 48) {
      return {
        errno: EINVAL,
        reason: `the queue's physical base 0x${basePa.toString(16)} is not aligned to its length ${length} or does not fit VCMDQ_ADDR (bits 47:5)`,
      };
    }
    return undefined;
  }
}

/** The SID_MATCH / SID_REPLACE pairs of one VINTF (an ida). */
export class VintfSidSlots {
  private readonly used: boolean[];

  constructor(readonly count: number) {
    this.used = new Array<boolean>(count).fill(false);
  }

  /** tegra241_vintf_init_vsid: the lowest free pair for a virt_id, or EINVAL / ENOSPC. */
  alloc(virtId: bigint): number | { readonly errno: number; readonly reason: string } {
    if (virtId > 0xffff_ffffn) {
      return { errno: EINVAL, reason: `virt_id 0x${virtId.toString(16)} does not fit 32 bits` };
    }
    const i = this.used.indexOf(false);
    if (i < 0) {
      return { errno: ENOSPC, reason: `all ${this.count} SID slots of the VINTF are in use` };
    }
    this.used[i] = true;
    return i;
  }

  /** Free pair `index`. */
  release(index: number): void {
    if (index >= 0 && index < this.count) this.used[index] = false;
  }
}
