/**
 * AMD-Vi event log and PPR log entries: 16 bytes each, written by the IOMMU
 * into rings in memory for the driver to read.
 */

/** ILLEGAL_DEV_TABLE_ENTRY: a DTE with reserved or inconsistent settings. */
export const EVENT_ILLEGAL_DEV_TABLE_ENTRY = 0x1;
/** IO_PAGE_FAULT: a translation or permission failure. */
export const EVENT_IO_PAGE_FAULT = 0x2;
/** DEV_TAB_HARDWARE_ERROR: the device table could not be read. */
export const EVENT_DEV_TAB_HARDWARE_ERROR = 0x3;
/** PAGE_TAB_HARDWARE_ERROR: a page table could not be read. */
export const EVENT_PAGE_TAB_HARDWARE_ERROR = 0x4;
/** ILLEGAL_COMMAND: the command buffer held an unknown or malformed command. */
export const EVENT_ILLEGAL_COMMAND = 0x5;
/** COMMAND_HARDWARE_ERROR. */
export const EVENT_COMMAND_HARDWARE_ERROR = 0x6;
/** IOTLB_INV_TIMEOUT: a device did not answer an IOTLB invalidation. */
export const EVENT_IOTLB_INV_TIMEOUT = 0x7;
/** INVALID_DEVICE_REQUEST: a request the DTE does not allow (a PASID without GV, ...). */
export const EVENT_INVALID_DEVICE_REQUEST = 0x8;
/** INVALID_PPR_REQUEST. */
export const EVENT_INVALID_PPR_REQUEST = 0x9;

/** Event code names, as Linux prints them. */
export const AMD_EVENT_NAMES: Readonly<Record<number, string>> = {
  1: 'ILLEGAL_DEV_TABLE_ENTRY',
  2: 'IO_PAGE_FAULT',
  3: 'DEV_TAB_HARDWARE_ERROR',
  4: 'PAGE_TAB_HARDWARE_ERROR',
  5: 'ILLEGAL_COMMAND',
  6: 'COMMAND_HARDWARE_ERROR',
  7: 'IOTLB_INV_TIMEOUT',
  8: 'INVALID_DEVICE_REQUEST',
  9: 'INVALID_PPR_REQUEST',
  13: 'RMP_PAGE_FAULT',
  14: 'RMP_HW_ERROR',
};

/** IO_PAGE_FAULT flag GN: the address is a guest address with a PASID. */
export const EVENT_FLAG_GN = 0x001;
/** Flag NX: an instruction fetch. */
export const EVENT_FLAG_NX = 0x002;
/** Flag US: a user-mode access. */
export const EVENT_FLAG_US = 0x004;
/** Flag I: an interrupt request rather than a memory transaction. */
export const EVENT_FLAG_I = 0x008;
/** Flag PR: the page was present (a permission fault). */
export const EVENT_FLAG_PR = 0x010;
/** Flag RW: a write. */
export const EVENT_FLAG_RW = 0x020;
/** Flag PE: the permissions were the cause. */
export const EVENT_FLAG_PE = 0x040;
/** Flag RZ: a reserved bit was set in an entry. */
export const EVENT_FLAG_RZ = 0x080;
/** Flag TR: an ATS translation request rather than a transaction. */
export const EVENT_FLAG_TR = 0x100;

/** An event log entry's fields. */
export interface AmdEvent {
  /** Event code (dword1 31:28). */
  readonly code: number;
  /** DeviceID (dword0 15:0). */
  readonly deviceId: number;
  /** DomainID, or PASID when GN (20 bits: dword0 19:16 high, dword1 15:0 low). */
  readonly tag: number;
  /** 12 flag bits (dword1 27:16). */
  readonly flags: number;
  /** Address (dwords 2-3). */
  readonly address: number;
}

/** The 16 bytes of an event log entry. */
export function encodeAmdEvent(e: AmdEvent): Uint8Array {
  const bytes = new Uint8Array(16);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, ((e.deviceId & 0xffff) | (((e.tag >>> 16) & 0xf) << 16)) >>> 0, true);
  v.setUint32(
    4,
    ((e.tag & 0xffff) | ((e.flags & 0xfff) << 16) | ((e.code & 0xf) << 28)) >>> 0,
    true,
  );
  v.setUint32(8, e.address >>> 0, true);
  v.setUint32(12, Math.floor(e.address / 4294967296) >>> 0, true);
  return bytes;
}

/** The fields of the event log entry at `offset` of `bytes`. */
export function decodeAmdEvent(bytes: Uint8Array, offset = 0): AmdEvent {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, 16);
  const d0 = v.getUint32(0, true);
  const d1 = v.getUint32(4, true);
  return {
    code: d1 >>> 28,
    deviceId: d0 & 0xffff,
    tag: (d0 & 0xf0000) | (d1 & 0xffff),
    flags: (d1 >>> 16) & 0xfff,
    address: v.getUint32(12, true) * 4294967296 + v.getUint32(8, true),
  };
}

/** PPR flag EXEC: execute permission requested. */
export const PPR_FLAG_EXEC = 0x002;
/** PPR flag READ. */
export const PPR_FLAG_READ = 0x004;
/** PPR flag WRITE. */
export const PPR_FLAG_WRITE = 0x020;
/** PPR flag US: 1 = user, 0 = supervisor. */
export const PPR_FLAG_US = 0x040;
/** PPR flag RVSD: a reserved bit was set in the request. */
export const PPR_FLAG_RVSD = 0x080;
/** PPR flag GN: the PASID is valid. */
export const PPR_FLAG_GN = 0x100;
/** PPR entry type of a page request. */
export const PPR_REQ_FAULT = 0x1;

/** A PPR log entry's fields. */
export interface AmdPprEntry {
  readonly deviceId: number;
  /** 20-bit PASID (bits 31:16 low, 45:42 high). */
  readonly pasid: number;
  /** Request tag (bits 41:32). */
  readonly tag: number;
  /** PPR_FLAG_* (bits 59:48). */
  readonly flags: number;
  /** Entry type (bits 63:60); 1 = page request. */
  readonly type: number;
  /** Page address (qword 1). */
  readonly address: number;
}

/** The 16 bytes of a PPR log entry. */
export function encodeAmdPprEntry(e: AmdPprEntry): Uint8Array {
  const bytes = new Uint8Array(16);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, ((e.deviceId & 0xffff) | ((e.pasid & 0xffff) << 16)) >>> 0, true);
  const hi =
    (e.tag & 0x3ff) |
    (((e.pasid >>> 16) & 0xf) << 10) |
    ((e.flags & 0xfff) << 16) |
    ((e.type & 0xf) << 28);
  v.setUint32(4, hi >>> 0, true);
  v.setUint32(8, e.address >>> 0, true);
  v.setUint32(12, Math.floor(e.address / 4294967296) >>> 0, true);
  return bytes;
}

/** The fields of the PPR log entry at `offset` of `bytes`. */
export function decodeAmdPprEntry(bytes: Uint8Array, offset = 0): AmdPprEntry {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, 16);
  const d0 = v.getUint32(0, true);
  const d1 = v.getUint32(4, true);
  return {
    deviceId: d0 & 0xffff,
    pasid: (((d1 >>> 10) & 0xf) << 16) | (d0 >>> 16),
    tag: d1 & 0x3ff,
    flags: (d1 >>> 16) & 0xfff,
    type: d1 >>> 28,
    address: v.getUint32(12, true) * 4294967296 + v.getUint32(8, true),
  };
}
