/**
 * Stream table entries (64 bytes, 8 words) and two-level stream table L1
 * descriptors, with the STE values the Linux 6.17 driver writes (abort,
 * bypass, CD table, stage 2, nested) and the vSTE check of iommufd nesting.
 */
import { EIO } from '@iommufd-sim/uapi-types';
import { BitLayout, bitFields } from './bits.js';

/** Words per STE. */
export const SMMU_STE_WORDS = 8;
/** Bytes per STE. */
export const SMMU_STE_BYTES = 64;

/** STE.Config values. */
export const SMMU_STE_CONFIG = {
  ABORT: 0,
  BYPASS: 4,
  S1_TRANS: 5,
  S2_TRANS: 6,
  NESTED: 7,
} as const;

/** STE.S1DSS values: what transactions without a SubstreamID do. */
export const SMMU_S1DSS = { TERMINATE: 0, BYPASS: 1, SSID0: 2 } as const;

/** STE.S1Fmt values: linear CD table, two-level with 4K (64 CDs) or 64K (1024 CDs) leaves. */
export const SMMU_S1FMT = { LINEAR: 0, L2_4K: 1, L2_64K: 2 } as const;

/** STE.EATS values. */
export const SMMU_EATS = { ABORT: 0, TRANS: 1, S1CHK: 2 } as const;

/** The stream table entry (every field of the spec's table). */
export const SMMU_STE = new BitLayout(
  'STE',
  SMMU_STE_WORDS,
  bitFields(
    ['V', 0, 0, 1],
    ['Config', 0, 1, 3],
    ['S1Fmt', 0, 4, 2],
    ['S1ContextPtr', 0, 6, 46, 'addr'],
    ['S1CDMax', 0, 59, 5],
    ['S1DSS', 1, 0, 2],
    ['S1CIR', 1, 2, 2],
    ['S1COR', 1, 4, 2],
    ['S1CSH', 1, 6, 2],
    ['MEV', 1, 19, 1],
    ['S2FWB', 1, 25, 1],
    ['S1STALLD', 1, 27, 1],
    ['EATS', 1, 28, 2],
    ['STRW', 1, 30, 2],
    ['SHCFG', 1, 44, 2],
    ['S2VMID', 2, 0, 16],
    ['S2T0SZ', 2, 32, 6],
    ['S2SL0', 2, 38, 2],
    ['S2IR0', 2, 40, 2],
    ['S2OR0', 2, 42, 2],
    ['S2SH0', 2, 44, 2],
    ['S2TG', 2, 46, 2],
    ['S2PS', 2, 48, 3],
    ['S2AA64', 2, 51, 1],
    ['S2ENDI', 2, 52, 1],
    ['S2AFFD', 2, 53, 1],
    ['S2PTW', 2, 54, 1],
    ['S2HD', 2, 55, 1],
    ['S2HA', 2, 56, 1],
    ['S2S', 2, 57, 1],
    ['S2R', 2, 58, 1],
    ['S2TTB', 3, 4, 48, 'addr'],
  ),
);

/** A two-level stream table's L1 descriptor: Span (L2 holds 2^(Span-1) STEs) and L2Ptr. */
export const SMMU_STRTAB_L1_DESC = new BitLayout(
  'SMMU_STRTAB_L1_DESC',
  1,
  bitFields(['Span', 0, 0, 5], ['L2Ptr', 0, 6, 46, 'addr']),
);

/** STE word 0 bits userspace may set in an iommufd vSTE (STRTAB_STE_0_NESTING_ALLOWED). */
export const STE0_NESTING_ALLOWED =
  1n | (7n << 1n) | (3n << 4n) | (((1n << 46n) - 1n) << 6n) | (31n << 59n);
/** STE word 1 bits userspace may set in an iommufd vSTE (STRTAB_STE_1_NESTING_ALLOWED). */
export const STE1_NESTING_ALLOWED =
  3n | (3n << 2n) | (3n << 4n) | (3n << 6n) | (1n << 27n) | (3n << 28n);

const EATS_MASK = 3n << 28n;

/** A vSTE that passed {@link validateVste}: the words the kernel keeps, and whether it asks for ATS. */
export interface CheckedVste {
  /** Word 0 (zero when the vSTE was not valid). */
  readonly ste0: bigint;
  /** Word 1 with EATS removed (the kernel sets EATS itself). */
  readonly ste1: bigint;
  /** Config of the vSTE after the V=0 rule (0 abort, 4 bypass, 5 stage-1 translate). */
  readonly config: number;
  /** EATS was "full ATS" on a stage-1 vSTE. */
  readonly enableAts: boolean;
}

/**
 * The kernel's arm_smmu_validate_vste: V=0 -> an all-zero (abort) vSTE;
 * bits outside the allowed masks, a Config other than abort/bypass/S1, or an
 * EATS other than 0/1 -> EIO.
 */
export function validateVste(
  words: readonly [bigint, bigint],
): { ok: true; value: CheckedVste } | { ok: false; errno: number; reason: string } {
  const [w0, w1] = words;
  if ((w0 & 1n) === 0n) {
    return {
      ok: true,
      value: { ste0: 0n, ste1: 0n, config: SMMU_STE_CONFIG.ABORT, enableAts: false },
    };
  }
  if ((w0 & ~STE0_NESTING_ALLOWED) !== 0n || (w1 & ~STE1_NESTING_ALLOWED) !== 0n) {
    return {
      ok: false,
      errno: EIO,
      reason: `vSTE sets bits outside the nesting-allowed masks (word0 0x${(w0 & ~STE0_NESTING_ALLOWED).toString(16)}, word1 0x${(w1 & ~STE1_NESTING_ALLOWED).toString(16)})`,
    };
  }
  const config = Number((w0 >> 1n) & 7n);
  if (
    config !== SMMU_STE_CONFIG.ABORT &&
    config !== SMMU_STE_CONFIG.BYPASS &&
    config !== SMMU_STE_CONFIG.S1_TRANS
  ) {
    return {
      ok: false,
      errno: EIO,
      reason: `vSTE Config ${config} is not abort, bypass or stage-1`,
    };
  }
  const eats = Number((w1 & EATS_MASK) >> 28n);
  if (eats !== SMMU_EATS.ABORT && eats !== SMMU_EATS.TRANS) {
    return { ok: false, errno: EIO, reason: `vSTE EATS ${eats} is not 0 or 1` };
  }
  return {
    ok: true,
    value: {
      ste0: w0,
      ste1: w1 & ~EATS_MASK,
      config,
      enableAts: config === SMMU_STE_CONFIG.S1_TRANS && eats === SMMU_EATS.TRANS,
    },
  };
}

/** The abort STE (V, Config 0): what blocked devices get. */
export function abortSte(): bigint[] {
  return SMMU_STE.encode({ V: 1, Config: SMMU_STE_CONFIG.ABORT });
}

/** The bypass STE (V, Config 4): what identity-domain devices get. */
export function bypassSte(): bigint[] {
  return SMMU_STE.encode({ V: 1, Config: SMMU_STE_CONFIG.BYPASS });
}
