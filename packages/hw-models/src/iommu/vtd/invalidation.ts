/**
 * Queued-invalidation descriptors (256-bit, as scalable mode requires): one
 * layout per type, with the type in bits 3:0.
 */
import { bytesToWords, defineLayout, type Layout, wordsToBytes } from './bits.js';

/** Descriptor types. */
export const QI_TYPE = {
  CONTEXT_CACHE: 1,
  IOTLB: 2,
  DEVICE_TLB: 3,
  INTERRUPT_ENTRY: 4,
  WAIT: 5,
  PASID_IOTLB: 6,
  PASID_CACHE: 7,
  PASID_DEVICE_TLB: 8,
  PAGE_GROUP_RESPONSE: 9,
} as const;

/** Bytes per descriptor in scalable mode (IQA_REG.DW = 1). */
export const QI_DESCRIPTOR_BYTES = 32;

/** Page group response codes (type 9). */
export const PRQ_RESPONSE = { SUCCESS: 0, INVALID: 1, FAILURE: 0xf } as const;

const type = ['type', 0, 4] as const;

/** The layout of every descriptor type the model executes. */
export const qiLayouts = {
  [QI_TYPE.CONTEXT_CACHE]: defineLayout('context-cache invalidate', 32, [
    type,
    ['granularity', 4, 2], // 1 global, 2 domain, 3 device
    ['did', 16, 16],
    ['sid', 32, 16],
    ['fm', 48, 2],
  ] as const),
  [QI_TYPE.IOTLB]: defineLayout('IOTLB invalidate', 32, [
    type,
    ['granularity', 4, 2], // 1 global, 2 domain, 3 page
    ['dw', 6, 1],
    ['dr', 7, 1],
    ['did', 16, 16],
    ['am', 64, 6],
    ['ih', 70, 1],
    ['addr', 76, 52, 4096],
  ] as const),
  [QI_TYPE.DEVICE_TLB]: defineLayout('device-TLB invalidate', 32, [
    type,
    ['pfsidLow', 12, 4],
    ['qdep', 16, 5],
    ['sid', 32, 16],
    ['pfsidHigh', 52, 12],
    ['size', 64, 1],
    ['addr', 76, 52, 4096],
  ] as const),
  [QI_TYPE.INTERRUPT_ENTRY]: defineLayout('interrupt-entry-cache invalidate', 32, [
    type,
    ['granularity', 4, 1],
    ['im', 27, 5],
    ['iidx', 32, 16],
  ] as const),
  [QI_TYPE.WAIT]: defineLayout('invalidation wait', 32, [
    type,
    ['interrupt', 4, 1],
    ['statusWrite', 5, 1],
    ['fence', 6, 1],
    ['pageRequestDrain', 7, 1],
    ['statusData', 32, 32],
    ['statusAddress', 66, 62, 4],
  ] as const),
  [QI_TYPE.PASID_IOTLB]: defineLayout('PASID-based IOTLB invalidate', 32, [
    type,
    ['granularity', 4, 2], // 2 all of a PASID (non-global), 3 page-selective within a PASID
    ['did', 16, 16],
    ['pasid', 32, 20],
    ['am', 64, 6],
    ['ih', 70, 1],
    ['addr', 76, 52, 4096],
  ] as const),
  [QI_TYPE.PASID_CACHE]: defineLayout('PASID-cache invalidate', 32, [
    type,
    ['granularity', 4, 2], // 0 domain, 1 PASID, 3 global
    ['did', 16, 16],
    ['pasid', 32, 20],
  ] as const),
  [QI_TYPE.PASID_DEVICE_TLB]: defineLayout('PASID-based device-TLB invalidate', 32, [
    type,
    ['qdep', 4, 5],
    ['pfsidLow', 12, 4],
    ['sid', 16, 16],
    ['pasid', 32, 20],
    ['pfsidHigh', 52, 12],
    ['global', 64, 1],
    ['size', 75, 1],
    ['addr', 76, 52, 4096],
  ] as const),
  [QI_TYPE.PAGE_GROUP_RESPONSE]: defineLayout('page group response', 32, [
    type,
    ['pasidPresent', 4, 1],
    ['privateDataPresent', 5, 1],
    ['responseCode', 12, 4],
    ['rid', 16, 16],
    ['pasid', 32, 20],
    ['lastPage', 66, 1],
    ['prgIndex', 67, 9],
  ] as const),
} as const;

/** A descriptor type the model knows. */
export type QiType = keyof typeof qiLayouts;
/** The fields of a descriptor of type T. */
export type QiFields<T extends QiType> =
  (typeof qiLayouts)[T] extends Layout<infer N> ? Record<N, number> : never;

/** Encode one descriptor of type `t` (the type field is filled in) as 32 bytes. */
export function encodeQiDescriptor<T extends QiType>(
  t: T,
  fields: Partial<Omit<QiFields<T>, 'type'>>,
): Uint8Array {
  const layout = qiLayouts[t] as unknown as Layout<string>;
  return wordsToBytes(layout.encode({ ...(fields as Record<string, number>), type: t }));
}

/** Decode the descriptor at byte `offset` of `bytes`: its type and fields, or null for an unknown type. */
export function decodeQiDescriptor(
  bytes: Uint8Array,
  offset = 0,
): { type: number; fields: Record<string, number> | null } {
  const words = bytesToWords(bytes, offset, QI_DESCRIPTOR_BYTES);
  const t = (words[0] as number) & 0xf;
  const high = ((words[0] as number) >>> 9) & 0x7; // type bits 11:9 of newer descriptors
  const layout = high === 0 ? (qiLayouts as Record<number, Layout<string>>)[t] : undefined;
  return { type: t | (high << 4), fields: layout === undefined ? null : layout.decode(words) };
}

/**
 * The range a device-TLB descriptor with S=1 covers: the lowest clear bit of
 * ADDR from bit 12 up gives the size (bit 12 clear -> 8 KiB). Returns
 * [start, length], or null for "everything".
 */
export function deviceTlbRange(addr: number, sizeBit: number): [number, number] | null {
  if (sizeBit === 0) return [addr, 4096];
  let size = 8192;
  while (size <= 2 ** 52 && Math.floor(addr / (size / 2)) % 2 === 1) size *= 2;
  if (size > 2 ** 52) return null;
  return [Math.floor(addr / size) * size, size];
}
