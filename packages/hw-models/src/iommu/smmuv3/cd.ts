/**
 * Context descriptors (64 bytes, 8 words) and the L1 descriptors of
 * two-level CD tables, with the stage-1 CD the Linux 6.17 driver builds for
 * a paging domain (arm_smmu_make_s1_cd).
 */
import { type ArmGranule, armPsEncode, armTgEncode } from '../../pagetable/arm-lpae-geometry.js';
import { BitLayout, bitFields } from './bits.js';

/** Words per CD. */
export const SMMU_CD_WORDS = 8;
/** Bytes per CD. */
export const SMMU_CD_BYTES = 64;
/** CDs per leaf of a two-level CD table with 64K leaves (S1Fmt 2), as Linux uses. */
export const SMMU_CD_L2_ENTRIES = 1024;

/** The context descriptor (every field of the spec's table; MAIR split in 32-bit halves). */
export const SMMU_CD = new BitLayout(
  'CD',
  SMMU_CD_WORDS,
  bitFields(
    ['T0SZ', 0, 0, 6],
    ['TG0', 0, 6, 2],
    ['IR0', 0, 8, 2],
    ['OR0', 0, 10, 2],
    ['SH0', 0, 12, 2],
    ['EPD0', 0, 14, 1],
    ['ENDI', 0, 15, 1],
    ['T1SZ', 0, 16, 6],
    ['TG1', 0, 22, 2],
    ['IR1', 0, 24, 2],
    ['OR1', 0, 26, 2],
    ['SH1', 0, 28, 2],
    ['EPD1', 0, 30, 1],
    ['V', 0, 31, 1],
    ['IPS', 0, 32, 3],
    ['AFFD', 0, 35, 1],
    ['WXN', 0, 36, 1],
    ['UWXN', 0, 37, 1],
    ['TBI', 0, 38, 2],
    ['PAN', 0, 40, 1],
    ['AA64', 0, 41, 1],
    ['HD', 0, 42, 1],
    ['HA', 0, 43, 1],
    ['S', 0, 44, 1],
    ['R', 0, 45, 1],
    ['A', 0, 46, 1],
    ['ASET', 0, 47, 1],
    ['ASID', 0, 48, 16],
    ['NSCFG0', 1, 0, 1],
    ['HAD0', 1, 1, 1],
    ['TTB0', 1, 4, 48, 'addr'],
    ['NSCFG1', 2, 0, 1],
    ['HAD1', 2, 1, 1],
    ['TTB1', 2, 4, 48, 'addr'],
    ['MAIR_LO', 3, 0, 32],
    ['MAIR_HI', 3, 32, 32],
  ),
);

/** The L1 descriptor of a two-level CD table: V and the leaf table address. */
export const SMMU_CD_L1_DESC = new BitLayout(
  'SMMU_CD_L1_DESC',
  1,
  bitFields(['V', 0, 0, 1], ['L2Ptr', 0, 12, 40, 'addr']),
);

/** Linux's MAIR: index 0 non-cacheable 0x44, 1 write-back 0xff, 2 device 0x04, 3 inner-NC/outer-WB 0xf4. */
export const LINUX_MAIR = 0xf404ff44;

/** What {@link makeS1Cd} needs to know about a stage-1 domain and the device. */
export interface S1CdParams {
  /** Root table address (TTB0). */
  readonly ttb0: number;
  /** Input size in bits (T0SZ = 64 - this). */
  readonly inputBits: number;
  /** Output size in bits (IPS). */
  readonly outputBits: number;
  /** Granule (TG0). */
  readonly granule: ArmGranule;
  /** The domain's ASID. */
  readonly asid: number;
  /** The master stalls on faults (CD.S). */
  readonly stall: boolean;
  /** Hardware dirty tracking (HA and HD). */
  readonly dirty: boolean;
}

/**
 * The CD Linux writes for a stage-1 domain: T0SZ/TG0, write-back inner
 * shareable walks, EPD1, V, IPS, AA64, S when the master stalls, R, A, ASET,
 * the ASID, HA|HD with dirty tracking, TTB0 and the MAIR.
 */
export function makeS1Cd(p: S1CdParams): bigint[] {
  return SMMU_CD.encode({
    T0SZ: 64 - p.inputBits,
    TG0: armTgEncode(p.granule),
    IR0: 1,
    OR0: 1,
    SH0: 3,
    EPD1: 1,
    V: 1,
    IPS: armPsEncode(p.outputBits),
    AA64: 1,
    S: p.stall,
    R: 1,
    A: 1,
    ASET: 1,
    ASID: p.asid,
    HA: p.dirty,
    HD: p.dirty,
    TTB0: p.ttb0,
    MAIR_LO: LINUX_MAIR,
  });
}
