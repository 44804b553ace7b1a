/**
 * The AMD-Vi Extended Feature Registers (MMIO 0x30 EFR and 0x1A0 EFR2): what
 * the driver reads to decide page-table depth, dirty tracking, PPR, PASID and
 * guest translation. Field positions follow Linux's FEATURE_* masks.
 */

/** One named field of a 64-bit register: `bits` wide from bit `shift`. */
interface Field {
  readonly name: string;
  readonly shift: number;
  readonly bits: number;
}

function field(name: string, shift: number, bits = 1): Field {
  return { name, shift, bits };
}

/** EFR fields by Linux name (FEATURE_PREFETCH is PREF). */
export const EFR_FIELDS: readonly Field[] = [
  field('PREF', 0),
  field('PPR', 1),
  field('X2APIC', 2),
  field('NX', 3),
  field('GT', 4),
  field('IA', 6),
  field('GA', 7),
  field('HE', 8),
  field('PC', 9),
  field('HATS', 10, 2),
  field('GATS', 12, 2),
  field('GLX', 14, 2),
  field('GAM_VAPIC', 21),
  field('PASMAX', 32, 5),
  field('GIOSUP', 48),
  field('HASUP', 49),
  field('EPHSUP', 50),
  field('HDSUP', 52),
  field('SNP', 63),
];

/** EFR2 fields by Linux name. */
export const EFR2_FIELDS: readonly Field[] = [
  field('SNPAVICSUP', 5, 3),
  field('NUM_INT_REMAP_SUP', 8, 2),
  field('HT_RANGE_IGNORE', 11),
];

/** Decoded register: single bits as booleans, wider fields as numbers. */
export type DecodedRegister = Readonly<Record<string, number | boolean>>;

function decode(fields: readonly Field[], value: bigint): DecodedRegister {
  const out: Record<string, number | boolean> = {};
  for (const f of fields) {
    const v = Number((value >> BigInt(f.shift)) & ((1n << BigInt(f.bits)) - 1n));
    out[f.name] = f.bits === 1 ? v === 1 : v;
  }
  return out;
}

function encode(fields: readonly Field[], values: DecodedRegister): bigint {
  let reg = 0n;
  for (const f of fields) {
    const v = values[f.name];
    if (v === undefined || v === false) continue;
    const n = BigInt(v === true ? 1 : v);
    if (n < 0n || n >= 1n << BigInt(f.bits)) {
      throw new RangeError(`${f.name} = ${v} does not fit ${f.bits} bits`);
    }
    reg |= n << BigInt(f.shift);
  }
  return reg;
}

/** EFR split into its named fields. */
export function decodeEfr(efr: bigint): DecodedRegister {
  return decode(EFR_FIELDS, efr);
}

/** EFR from named fields (missing ones are 0). */
export function encodeEfr(values: DecodedRegister): bigint {
  return encode(EFR_FIELDS, values);
}

/** EFR2 split into its named fields. */
export function decodeEfr2(efr2: bigint): DecodedRegister {
  return decode(EFR2_FIELDS, efr2);
}

/** EFR2 from named fields (missing ones are 0). */
export function encodeEfr2(values: DecodedRegister): bigint {
  return encode(EFR2_FIELDS, values);
}

/** What an AMD IOMMU's EFR/EFR2 say, in the terms a host configuration uses. */
export interface AmdFeatures {
  /** Host page-table levels supported (4, 5 or 6; EFR.HATS + 4). */
  readonly hostLevels: number;
  /** PASID width (EFR.PASMAX + 1 when guest translation is present), 0 = none. */
  readonly pasidBits: number;
  /** Host dirty tracking (HASUP and HDSUP). */
  readonly dirtyTracking: boolean;
  /** Peripheral page requests (PPR and EPHSUP). */
  readonly ppr: boolean;
  /** The HyperTransport hole need not be reserved (EFR2 HT_RANGE_IGNORE). */
  readonly htRangeIgnore?: boolean;
}

/**
 * EFR and EFR2 for a set of features (INVALIDATE_IOMMU_ALL, NX and prefetch
 * always present; with PASIDs, GT, PASMAX and the GLX their GCR3 tables need).
 */
export function efrFromFeatures(f: AmdFeatures): { efr: bigint; efr2: bigint } {
  if (f.hostLevels < 4 || f.hostLevels > 6) throw new RangeError('host levels must be 4, 5 or 6');
  const efr = encodeEfr({
    PREF: true,
    PPR: f.ppr,
    NX: true,
    GT: f.pasidBits > 0,
    IA: true,
    HATS: f.hostLevels - 4,
    PASMAX: f.pasidBits > 0 ? f.pasidBits - 1 : 0,
    // GCR3 levels (GLX) enough for every PASID: 9 PASID bits a level.
    GLX: f.pasidBits > 0 ? Math.min(2, Math.ceil(f.pasidBits / 9) - 1) : 0,
    HASUP: f.dirtyTracking,
    EPHSUP: f.ppr,
    HDSUP: f.dirtyTracking,
  });
  return { efr, efr2: encodeEfr2({ HT_RANGE_IGNORE: f.htRangeIgnore === true }) };
}
