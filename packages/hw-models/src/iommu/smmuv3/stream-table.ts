/**
 * The stream table (linear, or two-level with L1 descriptors and 256-STE
 * leaves as Linux builds it) and per-master CD tables (linear, or two-level
 * with 1024-CD leaves), all in simulated memory. The driver side allocates
 * and writes; `locateSte` and `locateCd` are the hardware's lookups.
 */
import type { FrameAllocator } from '../../memory/frame-allocator.js';
import type { PhysicalMemory } from '../../memory/physical-memory.js';
import { readSmmuWords, writeSmmuWords } from './bits.js';
import { SMMU_CD_BYTES, SMMU_CD_L1_DESC, SMMU_CD_L2_ENTRIES, SMMU_CD_WORDS } from './cd.js';
import {
  abortSte,
  SMMU_S1FMT,
  SMMU_STE_BYTES,
  SMMU_STE_WORDS,
  SMMU_STRTAB_L1_DESC,
} from './ste.js';

/** STEs per two-level leaf (Linux's SMMU_STRTAB_SPLIT = 8). */
export const SMMU_STRTAB_SPLIT = 8;

/** Where the hardware found (or failed to find) an STE. */
export type SteLocation =
  | { readonly ok: true; readonly address: number }
  | {
      readonly ok: false;
      readonly event: 'C_BAD_STREAMID' | 'F_STE_FETCH';
      readonly address: number;
      readonly reason: string;
    };

/** The stream table of one SMMU. */
export class StreamTable {
  /** STRTAB_BASE address. */
  readonly base: number;
  /** Two-level (FMT 1) or linear (FMT 0). */
  readonly twoLevel: boolean;
  /** LOG2SIZE: stream id width the table covers. */
  readonly log2Size: number;
  private readonly l1Bytes: number;
  private readonly leaves = new Map<number, number>();

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly allocator: FrameAllocator,
    sidBits: number,
    twoLevel: boolean,
  ) {
    this.twoLevel = twoLevel;
    this.log2Size = sidBits;
    if (twoLevel) {
      this.l1Bytes = 8 * 2 ** Math.max(0, sidBits - SMMU_STRTAB_SPLIT);
    } else {
      if (sidBits > 16)
        throw new RangeError('a linear stream table above 16 SID bits is too large');
      this.l1Bytes = SMMU_STE_BYTES * 2 ** sidBits;
    }
    const pa = allocator.allocate(smmuTableBytes(this.l1Bytes));
    if (pa < 0) throw new RangeError('no memory for the stream table');
    this.base = pa;
    if (!twoLevel) {
      const abort = abortSte();
      for (let sid = 0; sid < 2 ** sidBits; sid++)
        writeSmmuWords(memory, pa + sid * SMMU_STE_BYTES, abort);
    }
  }

  /** STRTAB_BASE register: address 51:6 (RA bit 62 clear). */
  baseRegister(): bigint {
    return BigInt(this.base);
  }

  /** STRTAB_BASE_CFG register: FMT 17:16, SPLIT 10:6, LOG2SIZE 5:0. */
  baseCfgRegister(): bigint {
    return BigInt(
      ((this.twoLevel ? 1 : 0) << 16) |
        ((this.twoLevel ? SMMU_STRTAB_SPLIT : 0) << 6) |
        this.log2Size,
    );
  }

  /** Driver: make sure `sid` has an STE (allocating its leaf, full of abort STEs). False on ENOMEM. */
  ensure(sid: number): boolean {
    if (!this.twoLevel) return true;
    const l1 = Math.floor(sid / 2 ** SMMU_STRTAB_SPLIT);
    if (this.leaves.has(l1)) return true;
    const bytes = SMMU_STE_BYTES * 2 ** SMMU_STRTAB_SPLIT;
    const pa = this.allocator.allocate(bytes);
    if (pa < 0) return false;
    const abort = abortSte();
    for (let i = 0; i < 2 ** SMMU_STRTAB_SPLIT; i++)
      writeSmmuWords(this.memory, pa + i * SMMU_STE_BYTES, abort);
    this.leaves.set(l1, pa);
    writeSmmuWords(
      this.memory,
      this.base + l1 * 8,
      SMMU_STRTAB_L1_DESC.encode({ Span: SMMU_STRTAB_SPLIT + 1, L2Ptr: pa }),
    );
    return true;
  }

  /** Driver: the address of `sid`'s STE (it must have been {@link ensure}d). */
  steAddress(sid: number): number {
    if (!this.twoLevel) return this.base + sid * SMMU_STE_BYTES;
    const leaf = this.leaves.get(Math.floor(sid / 2 ** SMMU_STRTAB_SPLIT));
    if (leaf === undefined) throw new RangeError(`stream ${sid} has no STE`);
    return leaf + (sid % 2 ** SMMU_STRTAB_SPLIT) * SMMU_STE_BYTES;
  }

  /** Driver: write `sid`'s STE. */
  writeSte(sid: number, words: readonly bigint[]): void {
    writeSmmuWords(this.memory, this.steAddress(sid), words);
  }

  /** Driver: read back `sid`'s STE. */
  readSte(sid: number): bigint[] {
    return readSmmuWords(this.memory, this.steAddress(sid), SMMU_STE_WORDS);
  }

  /** Hardware: find `sid`'s STE through STRTAB_BASE(_CFG) and the L1 descriptors in memory. */
  locateSte(sid: number): SteLocation {
    if (!(sid >= 0 && sid < 2 ** this.log2Size)) {
      return {
        ok: false,
        event: 'C_BAD_STREAMID',
        address: 0,
        reason: `stream id ${sid} is beyond LOG2SIZE ${this.log2Size}`,
      };
    }
    if (!this.twoLevel) return { ok: true, address: this.base + sid * SMMU_STE_BYTES };
    const l1Address = this.base + Math.floor(sid / 2 ** SMMU_STRTAB_SPLIT) * 8;
    const desc = SMMU_STRTAB_L1_DESC.decode([this.memory.readU64(l1Address)]);
    const span = desc.Span as number;
    const index = sid % 2 ** SMMU_STRTAB_SPLIT;
    if (span === 0 || span > SMMU_STRTAB_SPLIT + 1 || index >= 2 ** (span - 1)) {
      return {
        ok: false,
        event: 'C_BAD_STREAMID',
        address: l1Address,
        reason: `L1 stream table descriptor for stream ${sid} has Span ${span}`,
      };
    }
    const address = (desc.L2Ptr as number) + index * SMMU_STE_BYTES;
    if (address + SMMU_STE_BYTES > 2 ** this.memory.addressBits) {
      return {
        ok: false,
        event: 'F_STE_FETCH',
        address,
        reason: `STE address 0x${address.toString(16)} is outside memory`,
      };
    }
    return { ok: true, address };
  }
}

/** A master's context descriptor table, as the driver allocates it. */
export class CdTable {
  /** STE.S1ContextPtr. */
  readonly base: number;
  /** STE.S1Fmt. */
  readonly s1fmt: number;
  /** STE.S1CDMax (log2 of the number of CDs). */
  readonly s1cdmax: number;
  private readonly l1Bytes: number;
  private readonly leaves = new Map<number, number>();
  /** SSIDs with a valid CD. */
  readonly inUse = new Set<number>();

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly allocator: FrameAllocator,
    ssidBits: number,
  ) {
    this.s1cdmax = ssidBits;
    const contexts = 2 ** ssidBits;
    if (contexts <= SMMU_CD_L2_ENTRIES) {
      this.s1fmt = SMMU_S1FMT.LINEAR;
      this.l1Bytes = contexts * SMMU_CD_BYTES;
    } else {
      this.s1fmt = SMMU_S1FMT.L2_64K;
      this.l1Bytes = (contexts / SMMU_CD_L2_ENTRIES) * 8;
    }
    const pa = allocator.allocate(smmuTableBytes(this.l1Bytes));
    if (pa < 0) throw new RangeError('no memory for a CD table');
    this.base = pa;
  }

  /** Driver: the address of CD `ssid`, allocating its leaf; -1 on ENOMEM. */
  cdAddress(ssid: number): number {
    if (this.s1fmt === SMMU_S1FMT.LINEAR) return this.base + ssid * SMMU_CD_BYTES;
    const l1 = Math.floor(ssid / SMMU_CD_L2_ENTRIES);
    let leaf = this.leaves.get(l1);
    if (leaf === undefined) {
      leaf = this.allocator.allocate(SMMU_CD_L2_ENTRIES * SMMU_CD_BYTES);
      if (leaf < 0) return -1;
      this.leaves.set(l1, leaf);
      writeSmmuWords(
        this.memory,
        this.base + l1 * 8,
        SMMU_CD_L1_DESC.encode({ V: 1, L2Ptr: leaf }),
      );
    }
    return leaf + (ssid % SMMU_CD_L2_ENTRIES) * SMMU_CD_BYTES;
  }

  /** Driver: write CD `ssid` (all zero clears it). False on ENOMEM. */
  writeCd(ssid: number, words: readonly bigint[]): boolean {
    const pa = this.cdAddress(ssid);
    if (pa < 0) return false;
    writeSmmuWords(this.memory, pa, words);
    if ((words[0] ?? 0n) & (1n << 31n)) this.inUse.add(ssid);
    else this.inUse.delete(ssid);
    return true;
  }

  /** Driver: clear CD `ssid`. */
  clearCd(ssid: number): void {
    this.writeCd(ssid, new Array<bigint>(SMMU_CD_WORDS).fill(0n));
  }

  /** Release the table's memory. */
  free(): void {
    for (const leaf of this.leaves.values())
      this.allocator.free(leaf, SMMU_CD_L2_ENTRIES * SMMU_CD_BYTES);
    this.leaves.clear();
    this.allocator.free(this.base, smmuTableBytes(this.l1Bytes));
  }
}

/** The smallest power of two >= max(bytes, 4096). */
export function smmuTableBytes(bytes: number): number {
  let n = 4096;
  while (n < bytes) n *= 2;
  return n;
}
