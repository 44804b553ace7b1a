/**
 * VT-d capability registers: CAP_REG (offset 0x08) and ECAP_REG (0x10), every
 * field by name, encoded from a configuration and decoded back; the register
 * offsets and status bits the model uses.
 */
import { defineLayout, type Layout, qwordsToWords, wordsToQwords } from './bits.js';

/** Register offsets in the VT-d MMIO page. */
export const VTD_REG = {
  VER: 0x00,
  CAP: 0x08,
  ECAP: 0x10,
  GCMD: 0x18,
  GSTS: 0x1c,
  RTADDR: 0x20,
  CCMD: 0x28,
  FSTS: 0x34,
  FECTL: 0x38,
  IQH: 0x80,
  IQT: 0x88,
  IQA: 0x90,
  PQH: 0xc0,
  PQT: 0xc8,
  PQA: 0xd0,
  PRS: 0xdc,
} as const;

/** RTADDR_REG bit 10 (TTM = 01b): the root table is in scalable mode. */
export const VTD_RTADDR_SMT = 1 << 10;

/** FSTS_REG bits: primary fault overflow, pending fault, invalidation queue error, and friends. */
export const VTD_FSTS = {
  PFO: 1 << 0,
  PPF: 1 << 1,
  IQE: 1 << 4,
  ICE: 1 << 5,
  ITE: 1 << 6,
  PRO: 1 << 7,
} as const;

/** The CAP_REG fields (Linux cap_* decoders' positions). */
export const capLayout = defineLayout('CAP_REG', 8, [
  ['ND', 0, 3],
  ['AFL', 3, 1],
  ['RWBF', 4, 1],
  ['PLMR', 5, 1],
  ['PHMR', 6, 1],
  ['CM', 7, 1],
  ['SAGAW', 8, 5],
  ['MGAW', 16, 6],
  ['ZLR', 22, 1],
  ['ISOCH', 23, 1],
  ['FRO', 24, 10],
  ['SSLPS', 34, 4],
  ['PSI', 39, 1],
  ['NFR', 40, 8],
  ['MAMV', 48, 6],
  ['DWD', 54, 1],
  ['DRD', 55, 1],
  ['FS1GP', 56, 1],
  ['PI', 59, 1],
  ['FS5LP', 60, 1],
  ['ECMDS', 61, 1],
  ['ESIRTPS', 62, 1],
  ['ESRTPS', 63, 1],
] as const);

/** The ECAP_REG fields. */
export const ecapLayout = defineLayout('ECAP_REG', 8, [
  ['C', 0, 1],
  ['QI', 1, 1],
  ['DT', 2, 1],
  ['IR', 3, 1],
  ['EIM', 4, 1],
  ['PT', 6, 1],
  ['SC', 7, 1],
  ['IRO', 8, 10],
  ['MHMV', 20, 4],
  ['MTS', 25, 1],
  ['NEST', 26, 1],
  ['DIS', 27, 1],
  ['LEGACY_PASID', 28, 1],
  ['PRS', 29, 1],
  ['ERS', 30, 1],
  ['SRS', 31, 1],
  ['NWFS', 33, 1],
  ['EAFS', 34, 1],
  ['PSS', 35, 5],
  ['PASID', 40, 1],
  ['DIT', 41, 1],
  ['PDS', 42, 1],
  ['SMTS', 43, 1],
  ['VCS', 44, 1],
  ['SSADS', 45, 1],
  ['SSTS', 46, 1],
  ['FSTS', 47, 1],
  ['SMPWCS', 48, 1],
  ['RPS', 49, 1],
  ['PMS', 51, 1],
] as const);

/** A field name of CAP_REG. */
export type CapField = (typeof capLayout.fields)[number][0];
/** A field name of ECAP_REG. */
export type EcapField = (typeof ecapLayout.fields)[number][0];
/** CAP_REG decoded. */
export type VtdCap = Record<CapField, number>;
/** ECAP_REG decoded. */
export type VtdEcap = Record<EcapField, number>;

function encode64<N extends string>(layout: Layout<N>, fields: Partial<Record<N, number>>): bigint {
  return wordsToQwords(layout.encode(fields))[0] as bigint;
}

/** CAP_REG from named fields. */
export function encodeCap(fields: Partial<VtdCap>): bigint {
  return encode64(capLayout, fields);
}
/** CAP_REG into named fields. */
export function decodeCap(value: bigint): VtdCap {
  return capLayout.decode(qwordsToWords([value]));
}
/** ECAP_REG from named fields. */
export function encodeEcap(fields: Partial<VtdEcap>): bigint {
  return encode64(ecapLayout, fields);
}
/** ECAP_REG into named fields. */
export function decodeEcap(value: bigint): VtdEcap {
  return ecapLayout.decode(qwordsToWords([value]));
}

/** What the capability registers are built from. */
export interface VtdCapabilityConfig {
  /** Input (guest) address width: MGAW = bits - 1; SAGAW gets every depth up to it. */
  readonly inputBits: number;
  /** Leaf sizes: 2 MiB / 1 GiB give SSLPS bits (and FS1GP). */
  readonly pageSizes: readonly number[];
  /** PASID width (0 = no PASID). */
  readonly pasidBits: number;
  /** Nested translation (NEST). */
  readonly nesting: boolean;
  /** Second-stage A/D (SSADS). */
  readonly dirtyTracking: boolean;
  /** Device TLBs (DT). */
  readonly ats: boolean;
  /** Page requests (PRS). */
  readonly pri: boolean;
}

/**
 * CAP and ECAP of a scalable-mode VT-d unit as QEMU builds them
 * (x-scalable-mode=on, x-flts=on): FRO 0x22, NFR 0, ND 6, MAMV 18, PSI,
 * SSLPS, IRO 0xf, MHMV 15, QI, IR, PT, SRS, SMTS, FSTS and SSTS, plus what the
 * configuration adds (SAGAW/MGAW from the width, NEST, SSADS, PASID+PSS, PRS, DT).
 */
export function vtdCapabilities(config: VtdCapabilityConfig): { cap: bigint; ecap: bigint } {
  const sagaw = 0x2 | (config.inputBits >= 48 ? 0x4 : 0) | (config.inputBits >= 57 ? 0x8 : 0);
  const has2M = config.pageSizes.includes(2 ** 21);
  const has1G = config.pageSizes.includes(2 ** 30);
  const cap = encodeCap({
    ND: 6,
    SAGAW: sagaw,
    MGAW: config.inputBits - 1,
    FRO: 0x22,
    SSLPS: (has2M ? 1 : 0) | (has1G ? 2 : 0),
    PSI: 1,
    NFR: 0,
    MAMV: 18,
    FS1GP: has1G ? 1 : 0,
    FS5LP: config.inputBits >= 57 ? 1 : 0,
  });
  const pasid = config.pasidBits > 0;
  const ecap = encodeEcap({
    QI: 1,
    DT: config.ats ? 1 : 0,
    IR: 1,
    PT: 1,
    IRO: 0xf,
    MHMV: 15,
    NEST: config.nesting ? 1 : 0,
    PRS: config.pri ? 1 : 0,
    SRS: 1,
    PSS: pasid ? config.pasidBits - 1 : 0,
    PASID: pasid ? 1 : 0,
    SMTS: 1,
    SSADS: config.dirtyTracking ? 1 : 0,
    SSTS: 1,
    FSTS: 1,
  });
  return { cap, ecap };
}
