/**
 * AMD-Vi command buffer entries: 16 bytes (four little-endian dwords), the
 * opcode in dword1 bits 31:28. Layouts follow the Linux builders
 * (build_completion_wait, build_inv_dte, build_inv_iommu_pages,
 * build_inv_iotlb_pages, build_inv_irt, build_complete_ppr, build_inv_all).
 */

/** COMPLETION_WAIT: store a value (and/or interrupt) once earlier commands are done. */
export const CMD_COMPLETION_WAIT = 0x1;
/** INVALIDATE_DEVTAB_ENTRY: drop the cached DTE of a DeviceID. */
export const CMD_INVALIDATE_DEVTAB_ENTRY = 0x2;
/** INVALIDATE_IOMMU_PAGES: drop cached translations of a DomainID (and PASID) in a range. */
export const CMD_INVALIDATE_IOMMU_PAGES = 0x3;
/** INVALIDATE_IOTLB_PAGES: forward an invalidation to a device's IOTLB (ATS). */
export const CMD_INVALIDATE_IOTLB_PAGES = 0x4;
/** INVALIDATE_INTERRUPT_TABLE: drop cached interrupt remapping entries of a DeviceID. */
export const CMD_INVALIDATE_INTERRUPT_TABLE = 0x5;
/** COMPLETE_PPR_REQUEST: answer a peripheral page request. */
export const CMD_COMPLETE_PPR_REQUEST = 0x7;
/** INVALIDATE_IOMMU_ALL: drop every cached DTE, translation and interrupt entry. */
export const CMD_INVALIDATE_IOMMU_ALL = 0x8;
/** Bytes per command. */
export const AMD_COMMAND_SIZE = 16;

/** The address that, with S=1, means every page (CMD_INV_IOMMU_ALL_PAGES_ADDRESS with bits 11:0 clear). */
export const AMD_INV_ALL_PAGES_ADDRESS = 0x7fff_ffff_ffff_f000n;

/** COMPLETE_PPR_REQUEST status: the page is there, retry. */
export const PPR_STATUS_SUCCESS = 0x0;
/** COMPLETE_PPR_REQUEST status: invalid request. */
export const PPR_STATUS_INVALID = 0x1;
/** COMPLETE_PPR_REQUEST status: failure, stop requesting. */
export const PPR_STATUS_FAILURE = 0xf;

const S_BIT = 0x1;
const PDE_BIT = 0x2;
const GN_BIT = 0x4;

/**
 * The address field of an invalidation covering [address, address+size)
 * (Linux's build_inv_address): one page as is; more as the smallest naturally
 * aligned power-of-two block holding the range, its size folded into the low
 * address bits with S set; everything when bit 51 differs.
 */
export function amdInvalidationAddress(
  address: number,
  size: number,
): { address: bigint; s: boolean } {
  const first = Math.floor(address / 4096);
  const last = Math.floor((address + size - 1) / 4096);
  if (first === last) return { address: BigInt(first * 4096), s: false };
  const a = BigInt(address);
  const end = BigInt(address + size - 1);
  const msb = (end ^ a).toString(2).length - 1;
  if (msb > 51) return { address: AMD_INV_ALL_PAGES_ADDRESS, s: true };
  const folded = (a | ((1n << BigInt(msb)) - 1n)) & ~0xfffn;
  return { address: folded, s: true };
}

/** The range an invalidation address names: one page, or the S=1 block ('all' past 2^52). */
export function amdInvalidationRange(
  address: bigint,
  s: boolean,
): { start: number; size: number } | 'all' {
  const a = address & ~0xfffn;
  if (!s) return { start: Number(a), size: 4096 };
  let k = 12n;
  while (k < 64n && ((a >> k) & 1n) === 1n) k++;
  if (k >= 52n) return 'all';
  const size = 1n << (k + 1n);
  return { start: Number(a & ~(size - 1n)), size: Number(size) };
}

/** The address field for `size` bytes at `address`, or every page when `size` is absent. */
function invalidationOf(opts: { readonly address?: number; readonly size?: number }): {
  address: bigint;
  s: boolean;
} {
  if (opts.size === undefined) return { address: AMD_INV_ALL_PAGES_ADDRESS, s: true };
  return amdInvalidationAddress(opts.address ?? 0, opts.size);
}

function command(op: number, d0: number, d1: number, d2: number, d3: number): Uint8Array {
  const bytes = new Uint8Array(AMD_COMMAND_SIZE);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, d0 >>> 0, true);
  v.setUint32(4, (d1 | (op << 28)) >>> 0, true);
  v.setUint32(8, d2 >>> 0, true);
  v.setUint32(12, d3 >>> 0, true);
  return bytes;
}

const lo32 = (n: bigint): number => Number(n & 0xffffffffn);
const hi32 = (n: bigint): number => Number((n >> 32n) & 0xffffffffn);

/** COMPLETION_WAIT storing `data` at `address` (8-byte aligned) and/or raising the interrupt. */
export function encodeCompletionWait(opts: {
  readonly address?: number;
  readonly data?: bigint;
  readonly store?: boolean;
  readonly interrupt?: boolean;
}): Uint8Array {
  const a = BigInt(opts.address ?? 0);
  const data = opts.data ?? 0n;
  const flags = (opts.store === true ? 1 : 0) | (opts.interrupt === true ? 2 : 0);
  return command(
    CMD_COMPLETION_WAIT,
    (lo32(a) & ~7) | flags,
    hi32(a) & 0xfffff,
    lo32(data),
    hi32(data),
  );
}

/** INVALIDATE_DEVTAB_ENTRY for `deviceId`. */
export function encodeInvalidateDevtabEntry(deviceId: number): Uint8Array {
  return command(CMD_INVALIDATE_DEVTAB_ENTRY, deviceId & 0xffff, 0, 0, 0);
}

/**
 * INVALIDATE_IOMMU_PAGES for `domainId` over [address, address+size) (or all
 * pages when size is omitted); `pasid` sets GN; PDE (also flush the directory
 * entries) is set as Linux always does unless `pde` is false.
 */
export function encodeInvalidateIommuPages(opts: {
  readonly domainId: number;
  readonly address?: number;
  readonly size?: number;
  readonly pasid?: number;
  readonly pde?: boolean;
}): Uint8Array {
  const inv = invalidationOf(opts);
  const gn = opts.pasid !== undefined;
  const d2 =
    lo32(inv.address) |
    (inv.s ? S_BIT : 0) |
    (opts.pde === false ? 0 : PDE_BIT) |
    (gn ? GN_BIT : 0);
  return command(
    CMD_INVALIDATE_IOMMU_PAGES,
    gn ? (opts.pasid as number) & 0xfffff : 0,
    opts.domainId & 0xffff,
    d2,
    hi32(inv.address),
  );
}

/** INVALIDATE_IOTLB_PAGES for the device TLB of `deviceId` (PASID split across dwords 0 and 1). */
export function encodeInvalidateIotlbPages(opts: {
  readonly deviceId: number;
  readonly maxPending?: number;
  readonly address?: number;
  readonly size?: number;
  readonly pasid?: number;
}): Uint8Array {
  const inv = invalidationOf(opts);
  const gn = opts.pasid !== undefined;
  const pasid = opts.pasid ?? 0;
  const d0 =
    (opts.deviceId & 0xffff) |
    (((opts.maxPending ?? 0) & 0xff) << 24) |
    (gn ? ((pasid >> 8) & 0xff) << 16 : 0);
  const d1 = (opts.deviceId & 0xffff) | (gn ? (pasid & 0xff) << 16 : 0);
  const d2 = lo32(inv.address) | (inv.s ? S_BIT : 0) | (gn ? GN_BIT : 0);
  return command(CMD_INVALIDATE_IOTLB_PAGES, d0, d1, d2, hi32(inv.address));
}

/** INVALIDATE_INTERRUPT_TABLE for `deviceId`. */
export function encodeInvalidateInterruptTable(deviceId: number): Uint8Array {
  return command(CMD_INVALIDATE_INTERRUPT_TABLE, deviceId & 0xffff, 0, 0, 0);
}

/** COMPLETE_PPR_REQUEST answering request `tag` of `deviceId` (and `pasid`, setting GN). */
export function encodeCompletePprRequest(opts: {
  readonly deviceId: number;
  readonly pasid?: number;
  readonly tag: number;
  readonly status: number;
}): Uint8Array {
  const gn = opts.pasid !== undefined;
  return command(
    CMD_COMPLETE_PPR_REQUEST,
    opts.deviceId & 0xffff,
    gn ? (opts.pasid as number) & 0xfffff : 0,
    gn ? GN_BIT : 0,
    (opts.tag & 0x1ff) | ((opts.status & 0xf) << 12),
  );
}

/** INVALIDATE_IOMMU_ALL. */
export function encodeInvalidateIommuAll(): Uint8Array {
  return command(CMD_INVALIDATE_IOMMU_ALL, 0, 0, 0, 0);
}

/** A decoded command. */
export type AmdCommand =
  | {
      readonly op: 'COMPLETION_WAIT';
      readonly store: boolean;
      readonly interrupt: boolean;
      readonly address: number;
      readonly data: bigint;
    }
  | { readonly op: 'INVALIDATE_DEVTAB_ENTRY'; readonly deviceId: number }
  | {
      readonly op: 'INVALIDATE_IOMMU_PAGES';
      readonly domainId: number;
      readonly pasid: number | null;
      readonly pde: boolean;
      readonly range: { readonly start: number; readonly size: number } | 'all';
    }
  | {
      readonly op: 'INVALIDATE_IOTLB_PAGES';
      readonly deviceId: number;
      readonly maxPending: number;
      readonly pasid: number | null;
      readonly range: { readonly start: number; readonly size: number } | 'all';
    }
  | { readonly op: 'INVALIDATE_INTERRUPT_TABLE'; readonly deviceId: number }
  | {
      readonly op: 'COMPLETE_PPR_REQUEST';
      readonly deviceId: number;
      readonly pasid: number | null;
      readonly tag: number;
      readonly status: number;
    }
  | { readonly op: 'INVALIDATE_IOMMU_ALL' }
  | { readonly op: 'ILLEGAL'; readonly opcode: number };

/** Decode the command at `offset` of `bytes`. */
export function decodeAmdCommand(bytes: Uint8Array, offset = 0): AmdCommand {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, AMD_COMMAND_SIZE);
  const d0 = v.getUint32(0, true);
  const d1 = v.getUint32(4, true);
  const d2 = v.getUint32(8, true);
  const d3 = v.getUint32(12, true);
  const opcode = d1 >>> 28;
  const addr = (BigInt(d3) << 32n) | BigInt((d2 & ~0xfff) >>> 0);
  switch (opcode) {
    case CMD_COMPLETION_WAIT:
      return {
        op: 'COMPLETION_WAIT',
        store: (d0 & 1) !== 0,
        interrupt: (d0 & 2) !== 0,
        address: (d1 & 0xfffff) * 4294967296 + ((d0 & ~7) >>> 0),
        data: (BigInt(d3) << 32n) | BigInt(d2),
      };
    case CMD_INVALIDATE_DEVTAB_ENTRY:
      return { op: 'INVALIDATE_DEVTAB_ENTRY', deviceId: d0 & 0xffff };
    case CMD_INVALIDATE_IOMMU_PAGES:
      return {
        op: 'INVALIDATE_IOMMU_PAGES',
        domainId: d1 & 0xffff,
        pasid: (d2 & GN_BIT) !== 0 ? d0 & 0xfffff : null,
        pde: (d2 & PDE_BIT) !== 0,
        range: amdInvalidationRange(addr, (d2 & S_BIT) !== 0),
      };
    case CMD_INVALIDATE_IOTLB_PAGES:
      return {
        op: 'INVALIDATE_IOTLB_PAGES',
        deviceId: d0 & 0xffff,
        maxPending: d0 >>> 24,
        pasid: (d2 & GN_BIT) !== 0 ? (((d0 >>> 16) & 0xff) << 8) | ((d1 >>> 16) & 0xff) : null,
        range: amdInvalidationRange(addr, (d2 & S_BIT) !== 0),
      };
    case CMD_INVALIDATE_INTERRUPT_TABLE:
      return { op: 'INVALIDATE_INTERRUPT_TABLE', deviceId: d0 & 0xffff };
    case CMD_COMPLETE_PPR_REQUEST:
      return {
        op: 'COMPLETE_PPR_REQUEST',
        deviceId: d0 & 0xffff,
        pasid: (d2 & GN_BIT) !== 0 ? d1 & 0xfffff : null,
        tag: d3 & 0x1ff,
        status: (d3 >>> 12) & 0xf,
      };
    case CMD_INVALIDATE_IOMMU_ALL:
      return { op: 'INVALIDATE_IOMMU_ALL' };
    default:
      return { op: 'ILLEGAL', opcode };
  }
}
