/**
 * Event records (32 bytes, four words) and PRI queue entries (16 bytes):
 * event ids, the fault-record layout (Stall/STAG, PnU/InD/RnW, S2, CLASS,
 * InputAddr, IPA or fetch address) and the PRI request layout.
 */
import { type BitFieldInput, type BitFieldValues, BitLayout, bitFields } from './bits.js';

/** Bytes per event record. */
export const SMMU_EVT_BYTES = 32;
/** Bytes per PRI queue entry. */
export const SMMU_PRI_BYTES = 16;

/** Event ids. */
export const SMMU_EVENT_ID = {
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const;

/** An event's name. */
export type SmmuEventName = keyof typeof SMMU_EVENT_ID;

/** Event CLASS values (meaningful with S2=1): where the stage-2 fault happened. */
export const SMMU_EVENT_CLASS = { CD: 0, TT: 1, IN: 2 } as const;

const COMMON = [
  ['EventID', 0, 0, 8],
  ['SSV', 0, 11, 1],
  ['SSID', 0, 12, 20],
  ['SID', 0, 32, 32],
] as const;
const FAULT = [
  ['STAG', 1, 0, 16],
  ['Stall', 1, 31, 1],
  ['PnU', 1, 33, 1],
  ['InD', 1, 34, 1],
  ['RnW', 1, 35, 1],
  ['S2', 1, 39, 1],
  ['CLASS', 1, 40, 2],
  ['TTRnW', 1, 44, 1],
  ['InputAddr', 2, 0, 64, 'addr'],
] as const;

/** Translation-fault records (F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION): IPA in word 3. */
export const SMMU_EVT_FAULT = new BitLayout(
  'SMMU_EVT_FAULT',
  4,
  bitFields(...COMMON, ...FAULT, ['IPA', 3, 12, 40, 'addr']),
);
/** Fetch-fault records (F_STE_FETCH, F_CD_FETCH, F_WALK_EABT): the fetch address in word 3. */
export const SMMU_EVT_FETCH = new BitLayout(
  'SMMU_EVT_FETCH',
  4,
  bitFields(...COMMON, ...FAULT, ['FetchAddr', 3, 3, 49, 'addr']),
);
/** Configuration-error records (C_BAD_*, F_STREAM_DISABLED, ...): stream and substream only. */
export const SMMU_EVT_CONFIG = new BitLayout('SMMU_EVT_CONFIG', 4, bitFields(...COMMON));

const BY_ID = new Map<number, SmmuEventName>(
  (Object.entries(SMMU_EVENT_ID) as [SmmuEventName, number][]).map(([n, id]) => [id, n]),
);

function layoutFor(id: number): BitLayout {
  if (id >= 0x10 && id <= 0x13) return SMMU_EVT_FAULT;
  if (
    id === SMMU_EVENT_ID.F_STE_FETCH ||
    id === SMMU_EVENT_ID.F_CD_FETCH ||
    id === SMMU_EVENT_ID.F_WALK_EABT
  ) {
    return SMMU_EVT_FETCH;
  }
  return SMMU_EVT_CONFIG;
}

/** The four words of event `name` with `values` (EventID filled in). */
export function encodeSmmuEvent(name: SmmuEventName, values: BitFieldInput = {}): bigint[] {
  const id = SMMU_EVENT_ID[name];
  return layoutFor(id).encode({ ...values, EventID: id });
}

/** A decoded event record. */
export interface DecodedSmmuEvent {
  /** EventID. */
  readonly id: number;
  /** Its name, or undefined for an id this model does not know. */
  readonly name: SmmuEventName | undefined;
  /** Fields by name. */
  readonly fields: BitFieldValues;
}

/** Name and fields of an event record. */
export function decodeSmmuEvent(words: readonly bigint[]): DecodedSmmuEvent {
  const id = Number((words[0] ?? 0n) & 0xffn);
  return { id, name: BY_ID.get(id), fields: layoutFor(id).decode(words) };
}

/** The PRI queue entry. */
export const SMMU_PRI_ENTRY = new BitLayout(
  'SMMU_PRI_ENTRY',
  2,
  bitFields(
    ['SID', 0, 0, 32],
    ['SSID', 0, 32, 20],
    ['Priv', 0, 58, 1],
    ['Exec', 0, 59, 1],
    ['Read', 0, 60, 1],
    ['Write', 0, 61, 1],
    ['Last', 0, 62, 1],
    ['SSV', 0, 63, 1],
    ['PRGIndex', 1, 0, 9],
    ['Address', 1, 12, 52, 'addr'],
  ),
);
