/**
 * The arithmetic of VMSAv8-64 long-descriptor tables: granules, level
 * shifts, start levels, leaf sizes, stage-2 concatenation, and the small
 * register encodings (TG, PS, SL0) an STE or CD uses to describe a table.
 * Shared by the page-table format and the SMMUv3 model that programs it.
 */

/** A translation granule in bytes. */
export type ArmGranule = 4096 | 16384 | 65536;

/** The static shape of one LPAE table. */
export interface ArmLpaeLayout {
  /** Granule in bytes (also the size of every non-start table). */
  readonly granule: ArmGranule;
  /** log2 of the granule (12, 14 or 16). */
  readonly granuleShift: number;
  /** Index bits per full level (9, 11 or 13). */
  readonly bitsPerLevel: number;
  /** Level the walk starts at (0..3). */
  readonly startLevel: number;
  /** Index bits of the start table (fewer than a level for a small table, more when concatenated). */
  readonly startBits: number;
  /** Input address width in bits. */
  readonly inputBits: number;
  /** Output address width in bits. */
  readonly outputBits: number;
  /** Number of granule-sized tables concatenated at the start level (1 when not concatenated). */
  readonly concatenated: number;
}

/** log2 of a granule. */
export function armGranuleShift(granule: number): number {
  if (granule === 4096) return 12;
  if (granule === 16384) return 14;
  if (granule === 65536) return 16;
  throw new RangeError(`LPAE granule must be 4K, 16K or 64K, got ${granule}`);
}

/** Input address bit where level `level`'s index starts, for a granule of 2^granuleShift. */
export function armLevelShift(granuleShift: number, level: number): number {
  return granuleShift + (3 - level) * (granuleShift - 3);
}

/** The level a walk of `inputBits` starts at, without concatenation (the kernel's start_level). */
export function armStartLevel(granuleShift: number, inputBits: number): number {
  const levels = Math.ceil((inputBits - granuleShift) / (granuleShift - 3));
  return 4 - levels;
}

/**
 * Leaf sizes a granule allows: 4K: 4K/2M/1G; 16K: 16K/32M; 64K: 64K/512M and
 * 4T (level 1) only with a 52-bit output.
 */
export function armLeafSizes(granule: ArmGranule, outputBits = 48): number[] {
  if (granule === 4096) return [4096, 2 ** 21, 2 ** 30];
  if (granule === 16384) return [16384, 2 ** 25];
  return outputBits > 48 ? [65536, 2 ** 29, 2 ** 42] : [65536, 2 ** 29];
}

/**
 * Whether Linux (6.14+, arm_lpae_concat_mandatory) concatenates the stage-2
 * start tables: only where the architecture requires it (16K at level 0 with
 * a 48-bit IAS or OAS; 4K at level 0 with a 40/42-bit OAS; 16K at level 1
 * with a 40-bit OAS).
 */
export function armS2ConcatMandatory(
  granule: ArmGranule,
  startLevel: number,
  inputBits: number,
  outputBits: number,
): boolean {
  if (granule === 16384 && startLevel === 0) return outputBits === 48 || inputBits === 48;
  if (granule === 4096 && startLevel === 0) return outputBits === 40 || outputBits === 42;
  return granule === 16384 && startLevel === 1 && outputBits === 40;
}

/**
 * The layout of a table. `startLevel` forces a start level (a stage-2 table
 * described by an STE's SL0); otherwise it comes from the input size, one
 * level lower when `concatenate` is set and at most 16 tables result.
 */
export function armLpaeLayout(options: {
  readonly granule: ArmGranule;
  readonly inputBits: number;
  readonly outputBits: number;
  readonly startLevel?: number;
  readonly concatenate?: boolean;
}): ArmLpaeLayout {
  const { granule, inputBits, outputBits } = options;
  const granuleShift = armGranuleShift(granule);
  const bitsPerLevel = granuleShift - 3;
  const maxBits = granule === 65536 ? 52 : 48;
  if (!Number.isInteger(inputBits) || inputBits < granuleShift + 1 || inputBits > maxBits) {
    throw new RangeError(`input size ${inputBits} is outside [${granuleShift + 1}, ${maxBits}]`);
  }
  if (!Number.isInteger(outputBits) || outputBits < 32 || outputBits > maxBits) {
    throw new RangeError(`output size ${outputBits} is outside [32, ${maxBits}]`);
  }
  let startLevel = options.startLevel ?? armStartLevel(granuleShift, inputBits);
  if (options.startLevel === undefined && options.concatenate === true) {
    const natural = inputBits - armLevelShift(granuleShift, startLevel);
    if (startLevel < 3 && natural <= 4) startLevel++;
  }
  const startBits = inputBits - armLevelShift(granuleShift, startLevel);
  if (!Number.isInteger(startLevel) || startLevel < 0 || startLevel > 3) {
    throw new RangeError(`start level ${startLevel} is outside [0, 3]`);
  }
  if (startBits < 1 || startBits > bitsPerLevel + 4) {
    throw new RangeError(
      `start level ${startLevel} cannot resolve a ${inputBits}-bit input with a ${granule}-byte granule`,
    );
  }
  return {
    granule,
    granuleShift,
    bitsPerLevel,
    startLevel,
    startBits,
    inputBits,
    outputBits,
    concatenated: startBits > bitsPerLevel ? 2 ** (startBits - bitsPerLevel) : 1,
  };
}

/** The TG0 (CD) / S2TG (STE) encoding of a granule: 0 = 4K, 1 = 64K, 2 = 16K. */
export function armTgEncode(granule: ArmGranule): number {
  return granule === 4096 ? 0 : granule === 65536 ? 1 : 2;
}

/** The granule of a TG0 / S2TG value, or undefined for the reserved value 3. */
export function armTgDecode(tg: number): ArmGranule | undefined {
  return tg === 0 ? 4096 : tg === 1 ? 65536 : tg === 2 ? 16384 : undefined;
}

const PS_BITS = [32, 36, 40, 42, 44, 48, 52] as const;

/** The IPS / S2PS / IDR5.OAS encoding of an address size in bits (32..52). */
export function armPsEncode(bits: number): number {
  const i = PS_BITS.indexOf(bits as (typeof PS_BITS)[number]);
  if (i < 0) throw new RangeError(`no PS encoding for ${bits}-bit addresses`);
  return i;
}

/** The address size of an IPS / S2PS / OAS value (values above 6 read as 52, as the SMMU caps them). */
export function armPsDecode(ps: number): number {
  return PS_BITS[Math.min(ps, 6)] as number;
}

/**
 * STE.S2SL0 for a start level: with a 4K granule 0 = L2, 1 = L1, 2 = L0;
 * with 16K/64K 0 = L3, 1 = L2, 2 = L1 (the kernel's `~sl & 3`).
 */
export function armS2Sl0Encode(granule: ArmGranule, startLevel: number): number {
  const sl = granule === 4096 ? startLevel + 1 : startLevel;
  return ~sl & 3;
}

/** The start level an S2SL0 value selects, or undefined for a reserved value. */
export function armS2Sl0Decode(granule: ArmGranule, sl0: number): number | undefined {
  if (sl0 === 3) return undefined;
  const level = granule === 4096 ? 2 - sl0 : 3 - sl0;
  return level >= 0 ? level : undefined;
}

/** Entries per contiguous-hint span at `level`: 4K 16; 16K 128 at L3 and 32 at L2; 64K 32. */
export function armContiguousEntries(granule: ArmGranule, level: number): number {
  if (granule === 4096) return 16;
  if (granule === 16384) return level === 3 ? 128 : 32;
  return 32;
}
