/**
 * The VT-d context structures in memory: root table entries (legacy and
 * scalable), legacy and scalable-mode context entries, PASID directory
 * entries and PASID table entries, as named-field codecs.
 */
import { defineLayout } from './bits.js';

/** Legacy root entry (16 bytes, one per bus). */
export const rootEntryLayout = defineLayout('root entry', 16, [
  ['present', 0, 1],
  ['contextTable', 12, 52, 4096],
] as const);

/** Scalable-mode root entry: lower (devfn 0..127) and upper (128..255) context tables. */
export const smRootEntryLayout = defineLayout('scalable root entry', 16, [
  ['lowerPresent', 0, 1],
  ['lowerContextTable', 12, 52, 4096],
  ['upperPresent', 64, 1],
  ['upperContextTable', 76, 52, 4096],
] as const);

/** Legacy context entry (16 bytes, index devfn). TT: 0 translated, 1 + device TLB, 2 pass-through. */
export const contextEntryLayout = defineLayout('context entry', 16, [
  ['present', 0, 1],
  ['fpd', 1, 1],
  ['tt', 2, 2],
  ['ssptptr', 12, 52, 4096],
  ['aw', 64, 3],
  ['did', 72, 16],
] as const);

/** Scalable-mode context entry (32 bytes, index devfn & 0x7f). */
export const smContextEntryLayout = defineLayout('scalable context entry', 32, [
  ['present', 0, 1],
  ['fpd', 1, 1],
  ['dte', 2, 1],
  ['paside', 3, 1],
  ['pre', 4, 1],
  ['pdts', 9, 3],
  ['pasidDir', 12, 52, 4096],
  ['ridPasid', 64, 20],
] as const);

/** PASID directory entry (8 bytes, index PASID bits 19:6). */
export const pasidDirEntryLayout = defineLayout('PASID directory entry', 8, [
  ['present', 0, 1],
  ['fpd', 1, 1],
  ['pasidTable', 12, 52, 4096],
] as const);

/** PASID table entry (64 bytes, index PASID bits 5:0). */
export const pasidEntryLayout = defineLayout('PASID entry', 64, [
  ['present', 0, 1],
  ['fpd', 1, 1],
  ['aw', 2, 3],
  ['pgtt', 6, 3],
  ['ssade', 9, 1],
  ['ssptptr', 12, 52, 4096],
  ['did', 64, 16],
  ['pwsnp', 87, 1],
  ['pgsnp', 88, 1],
  ['sre', 128, 1],
  ['fspm', 130, 2],
  ['wpe', 132, 1],
  ['eafe', 135, 1],
  ['fsptptr', 140, 52, 4096],
] as const);

/** PASID entry PGTT values. */
export const PGTT = { FIRST_STAGE: 1, SECOND_STAGE: 2, NESTED: 3, PASS_THROUGH: 4 } as const;

/** Legacy context entry TT values. */
export const CONTEXT_TT = { TRANSLATED: 0, DEVICE_TLB: 1, PASS_THROUGH: 2 } as const;

/** A decoded scalable-mode context entry. */
export type SmContextEntry = ReturnType<typeof smContextEntryLayout.decode>;
/** A decoded PASID table entry. */
export type PasidEntry = ReturnType<typeof pasidEntryLayout.decode>;

/** AW field (levels - 2) of a table depth. */
export function awOfLevels(levels: number): number {
  return levels - 2;
}
