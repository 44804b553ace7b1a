/**
 * What VT-d hardware writes for software: fault recording registers (FRCD),
 * page request descriptors, and the fault reason codes.
 */

import type { TranslationFault } from '../../pagetable/format.js';
import { defineLayout } from './bits.js';

/** Fault recording register (128 bits). T = 1 for a read, 0 for a write; F = valid. */
export const frcdLayout = defineLayout('fault recording register', 16, [
  ['faultInfo', 12, 52, 4096],
  ['sid', 64, 16],
  ['pasidPresent', 95, 1],
  ['reason', 96, 8],
  ['pasid', 104, 20],
  ['read', 126, 1],
  ['fault', 127, 1],
] as const);

/** Page request descriptor (256 bits, type 1). */
export const pageRequestLayout = defineLayout('page request descriptor', 32, [
  ['type', 0, 8],
  ['pasidPresent', 8, 1],
  ['privateDataPresent', 9, 1],
  ['rid', 16, 16],
  ['pasid', 32, 20],
  ['exec', 52, 1],
  ['priv', 53, 1],
  ['read', 64, 1],
  ['write', 65, 1],
  ['lastPage', 66, 1],
  ['prgIndex', 67, 9],
  ['address', 76, 52, 4096],
] as const);

/** VT-d fault reasons: legacy codes and the scalable-mode ones QEMU raises. */
export const VTD_FAULT = {
  ROOT_NOT_PRESENT: 0x1,
  CONTEXT_NOT_PRESENT: 0x2,
  CONTEXT_INVALID: 0x3,
  ADDRESS_BEYOND_MGAW: 0x4,
  WRITE: 0x5,
  READ: 0x6,
  PAGING_ENTRY_NOT_PRESENT: 0x7,
  ROOT_TABLE_ACCESS: 0x8,
  CONTEXT_TABLE_ACCESS: 0x9,
  ROOT_RESERVED: 0xa,
  CONTEXT_RESERVED: 0xb,
  PAGING_ENTRY_RESERVED: 0xc,
  CONTEXT_TT_BLOCKED: 0xd,
  RTADDR_INVALID_TTM: 0x31,
  SM_PRE_ABSENT: 0x47,
  PASID_DIR_ACCESS: 0x50,
  PASID_DIR_ENTRY_NOT_PRESENT: 0x51,
  PASID_TABLE_ACCESS: 0x58,
  PASID_ENTRY_NOT_PRESENT: 0x59,
  PASID_ENTRY_INVALID: 0x5b,
  FS_ENTRY_ACCESS: 0x70,
  FS_ENTRY_NOT_PRESENT: 0x71,
  FS_ENTRY_RESERVED: 0x72,
  FSPTPTR_INVALID: 0x73,
  FS_NON_CANONICAL: 0x80,
  FS_USER_SUPERVISOR: 0x81,
  SM_WRITE: 0x85,
  SM_INTERRUPT_ADDRESS: 0x87,
} as const;

const names = new Map<number, string>(Object.entries(VTD_FAULT).map(([k, v]) => [v, k]));

/** The name of a fault reason ('READ', 'PASID_ENTRY_NOT_PRESENT', ...), or 'UNKNOWN'. */
export function vtdFaultName(reason: number): string {
  return names.get(reason) ?? 'UNKNOWN';
}

/** The fault reason of a failed first-stage (x86-64) walk. */
export function firstStageReason(fault: TranslationFault, write: boolean): number {
  switch (fault) {
    case 'not-present':
      return VTD_FAULT.FS_ENTRY_NOT_PRESENT;
    case 'non-canonical':
      return VTD_FAULT.FS_NON_CANONICAL;
    case 'reserved-bits':
    case 'address-size':
      return VTD_FAULT.FS_ENTRY_RESERVED;
    case 'table-fetch':
      return VTD_FAULT.FS_ENTRY_ACCESS;
    default:
      return write ? VTD_FAULT.SM_WRITE : VTD_FAULT.FS_USER_SUPERVISOR;
  }
}

/** The fault reason of a failed second-stage walk (QEMU reports the legacy codes in scalable mode too). */
export function secondStageReason(fault: TranslationFault, write: boolean): number {
  switch (fault) {
    case 'not-present':
      return VTD_FAULT.PAGING_ENTRY_NOT_PRESENT;
    case 'address-size':
      return VTD_FAULT.ADDRESS_BEYOND_MGAW;
    case 'reserved-bits':
      return VTD_FAULT.PAGING_ENTRY_RESERVED;
    case 'table-fetch':
      return VTD_FAULT.PAGING_ENTRY_NOT_PRESENT;
    default:
      return write ? VTD_FAULT.WRITE : VTD_FAULT.READ;
  }
}
