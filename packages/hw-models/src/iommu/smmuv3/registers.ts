/**
 * SMMUv3 ID registers (IDR0-IDR5 at 0x00-0x14, IIDR at 0x18, AIDR at 0x1c):
 * every field by name, encoded from a configuration and decoded back. These
 * are the raw words IOMMU_GET_HW_INFO copies into `iommu_hw_info_arm_smmuv3`.
 */
import { type BitFieldInput, type BitFieldValues, BitLayout, bitFields } from './bits.js';

/** IDR0: the main feature register. */
export const IDR0 = new BitLayout(
  'IDR0',
  1,
  bitFields(
    ['S2P', 0, 0, 1],
    ['S1P', 0, 1, 1],
    ['TTF', 0, 2, 2],
    ['COHACC', 0, 4, 1],
    ['BTM', 0, 5, 1],
    ['HTTU', 0, 6, 2],
    ['DORMHINT', 0, 8, 1],
    ['HYP', 0, 9, 1],
    ['ATS', 0, 10, 1],
    ['NS1ATS', 0, 11, 1],
    ['ASID16', 0, 12, 1],
    ['MSI', 0, 13, 1],
    ['SEV', 0, 14, 1],
    ['ATOS', 0, 15, 1],
    ['PRI', 0, 16, 1],
    ['VMW', 0, 17, 1],
    ['VMID16', 0, 18, 1],
    ['CD2L', 0, 19, 1],
    ['VATOS', 0, 20, 1],
    ['TTENDIAN', 0, 21, 2],
    ['ATSRECERR', 0, 23, 1],
    ['STALL_MODEL', 0, 24, 2],
    ['TERM_MODEL', 0, 26, 1],
    ['ST_LEVEL', 0, 27, 2],
    ['RME_IMPL', 0, 30, 1],
  ),
);

/** IDR1: table and queue sizes. */
export const IDR1 = new BitLayout(
  'IDR1',
  1,
  bitFields(
    ['SIDSIZE', 0, 0, 6],
    ['SSIDSIZE', 0, 6, 5],
    ['PRIQS', 0, 11, 5],
    ['EVENTQS', 0, 16, 5],
    ['CMDQS', 0, 21, 5],
    ['ATTR_PERMS_OVR', 0, 26, 1],
    ['ATTR_TYPES_OVR', 0, 27, 1],
    ['REL', 0, 28, 1],
    ['QUEUES_PRESET', 0, 29, 1],
    ['TABLES_PRESET', 0, 30, 1],
    ['ECMDQ', 0, 31, 1],
  ),
);

/** IDR2: the VATOS page base. */
export const IDR2 = new BitLayout('IDR2', 1, bitFields(['BA_VATOS', 0, 0, 10]));

/** IDR3: later architecture features. */
export const IDR3 = new BitLayout(
  'IDR3',
  1,
  bitFields(
    ['HAD', 0, 2, 1],
    ['PBHA', 0, 3, 1],
    ['XNX', 0, 4, 1],
    ['PPS', 0, 5, 1],
    ['MPAM', 0, 7, 1],
    ['FWB', 0, 8, 1],
    ['STT', 0, 9, 1],
    ['RIL', 0, 10, 1],
    ['BBML', 0, 11, 2],
    ['E0PD', 0, 13, 1],
    ['PTWNNC', 0, 14, 1],
    ['DPT', 0, 15, 1],
  ),
);

/** IDR4: implementation defined (no architected fields). */
export const IDR4 = new BitLayout('IDR4', 1, bitFields(['IMPDEF', 0, 0, 32]));

/** IDR5: output size, granules, VA size, stall limit. */
export const IDR5 = new BitLayout(
  'IDR5',
  1,
  bitFields(
    ['OAS', 0, 0, 3],
    ['GRAN4K', 0, 4, 1],
    ['GRAN16K', 0, 5, 1],
    ['GRAN64K', 0, 6, 1],
    ['VAX', 0, 10, 2],
    ['STALL_MAX', 0, 16, 16],
  ),
);

/** IIDR: who made it. */
export const IIDR = new BitLayout(
  'IIDR',
  1,
  bitFields(
    ['Implementer', 0, 0, 12],
    ['Revision', 0, 12, 4],
    ['Variant', 0, 16, 4],
    ['ProductID', 0, 20, 12],
  ),
);

/** AIDR: which architecture revision (major 0 = SMMUv3, minor = v3.x). */
export const AIDR = new BitLayout(
  'AIDR',
  1,
  bitFields(['ArchMinorRev', 0, 0, 4], ['ArchMajorRev', 0, 4, 4]),
);

/** The registers in hw_info order: IDR0..IDR5, IIDR, AIDR. */
export const SMMU_ID_REGISTERS = { IDR0, IDR1, IDR2, IDR3, IDR4, IDR5, IIDR, AIDR } as const;

/** Register name -> field values, for {@link encodeSmmuIdRegisters}. */
export type SmmuIdFields = { readonly [K in keyof typeof SMMU_ID_REGISTERS]?: BitFieldInput };

/** Register name -> 32-bit value. */
export type SmmuIdRegisters = { readonly [K in keyof typeof SMMU_ID_REGISTERS]: number };

/** Encode every ID register from named fields (missing registers and fields are zero). */
export function encodeSmmuIdRegisters(values: SmmuIdFields): SmmuIdRegisters {
  const out = {} as Record<keyof typeof SMMU_ID_REGISTERS, number>;
  for (const [name, layout] of Object.entries(SMMU_ID_REGISTERS) as [
    keyof typeof SMMU_ID_REGISTERS,
    BitLayout,
  ][]) {
    out[name] = Number(layout.encode(values[name] ?? {})[0]);
  }
  return out;
}

/** Decode every ID register into named fields. */
export function decodeSmmuIdRegisters(
  regs: SmmuIdRegisters,
): Record<keyof typeof SMMU_ID_REGISTERS, BitFieldValues> {
  const out = {} as Record<keyof typeof SMMU_ID_REGISTERS, BitFieldValues>;
  for (const [name, layout] of Object.entries(SMMU_ID_REGISTERS) as [
    keyof typeof SMMU_ID_REGISTERS,
    BitLayout,
  ][]) {
    out[name] = layout.decode([BigInt(regs[name] >>> 0)]);
  }
  return out;
}

/** What an SMMUv3 is built with; every field has a default (see {@link smmuIdFieldsFor}). */
export interface SmmuFeatures {
  /** Stage-2 (and so nesting) support. */
  readonly stage2: boolean;
  /** HTTU: 0 none, 1 access flag, 2 access flag and dirty state. */
  readonly httu: 0 | 1 | 2;
  /** ATS (device TLBs). */
  readonly ats: boolean;
  /** PRI queue. */
  readonly pri: boolean;
  /** Stream id width (stream table size). */
  readonly sidBits: number;
  /** Substream id (PASID) width. */
  readonly ssidBits: number;
  /** Output address size in bits (OAS). */
  readonly oasBits: number;
  /** 52-bit virtual addresses (VAX). */
  readonly vax52: boolean;
  /** Two-level stream table (ST_LEVEL = 1) instead of a linear one. */
  readonly twoLevelStreamTable: boolean;
  /** STALL_MODEL: 0 stall and terminate, 1 terminate only, 2 stall forced. */
  readonly stallModel: 0 | 1 | 2;
  /** Range invalidation (RIL). */
  readonly rangeInvalidation: boolean;
  /** S2FWB. */
  readonly s2fwb: boolean;
}

/**
 * The ID register fields of a realistic SMMUv3.2 with `features`. Choices
 * that the configuration does not set: AArch64 tables only (TTF 2), coherent
 * (COHACC), 16-bit ASIDs and VMIDs, two-level CD tables (CD2L), little-endian
 * tables only (TTENDIAN 2), terminated transactions always abort
 * (TERM_MODEL 1), MSIs and SEV, no EL2/E2H (HYP 0, so the driver uses the
 * NS-EL1 TLBI commands), queues of up to 2^19 entries, BBML 2, HAD, STT,
 * 4K/16K/64K granules, STALL_MAX 128, IIDR implementer 0x43b (Arm's JEP106
 * code) with product id 0 for this simulated part, AIDR = SMMUv3.2.
 */
export function smmuIdFieldsFor(features: SmmuFeatures): SmmuIdFields {
  const oas = [32, 36, 40, 42, 44, 48, 52].indexOf(features.oasBits);
  if (oas < 0) throw new RangeError(`OAS ${features.oasBits} is not an architected size`);
  return {
    IDR0: {
      S2P: features.stage2,
      S1P: true,
      TTF: 2,
      COHACC: true,
      HTTU: features.httu,
      ATS: features.ats,
      ASID16: true,
      MSI: true,
      SEV: true,
      PRI: features.pri,
      VMID16: true,
      CD2L: true,
      TTENDIAN: 2,
      STALL_MODEL: features.stallModel,
      TERM_MODEL: true,
      ST_LEVEL: features.twoLevelStreamTable ? 1 : 0,
    },
    IDR1: {
      SIDSIZE: features.sidBits,
      SSIDSIZE: features.ssidBits,
      PRIQS: 19,
      EVENTQS: 19,
      CMDQS: 19,
    },
    IDR3: {
      HAD: true,
      FWB: features.s2fwb,
      STT: true,
      RIL: features.rangeInvalidation,
      BBML: 2,
    },
    IDR5: {
      OAS: oas,
      GRAN4K: true,
      GRAN16K: true,
      GRAN64K: true,
      VAX: features.vax52 ? 1 : 0,
      STALL_MAX: 128,
    },
    IIDR: { Implementer: 0x43b },
    AIDR: { ArchMajorRev: 0, ArchMinorRev: 2 },
  };
}
