/**
 * Command queue entries (16 bytes, two words): every command the model
 * executes, by name and opcode, with its fields. `decodeSmmuCommand` and
 * `encodeSmmuCommand` are what a vIOMMU uses to rewrite guest commands (insert
 * the VMID, replace a virtual SID).
 */
import { type BitFieldInput, type BitFieldValues, BitLayout, bitFields } from './bits.js';

/** Bytes per command. */
export const SMMU_CMD_BYTES = 16;

// Fields shared by the TLBI-by-address commands' second word.
const TLBI_ADDR_WORD1 = [
  ['Leaf', 1, 0, 1],
  ['TTL', 1, 8, 2],
  ['TG', 1, 10, 2],
  ['Address', 1, 12, 52, 'addr'],
] as const;
const TLBI_RANGE_WORD0 = [
  ['NUM', 0, 12, 5],
  ['SCALE', 0, 20, 5],
] as const;
const VMID = ['VMID', 0, 32, 16] as const;
const ASID = ['ASID', 0, 48, 16] as const;
const SID = ['SID', 0, 32, 32] as const;
const SSID = ['SSID', 0, 12, 20] as const;
const SSV = ['SSV', 0, 11, 1] as const;
const SSEC = ['SSec', 0, 10, 1] as const;

/** Every command: name -> opcode and the layout of its fields (opcode itself excluded). */
export const SMMU_COMMANDS = {
  PREFETCH_CONFIG: { opcode: 0x01, layout: cmd('PREFETCH_CONFIG', SSEC, SSV, SSID, SID) },
  PREFETCH_ADDR: {
    opcode: 0x02,
    layout: cmd(
      'PREFETCH_ADDR',
      SSEC,
      SSV,
      SSID,
      SID,
      ['Size', 1, 0, 5],
      ['Address', 1, 12, 52, 'addr'],
    ),
  },
  CFGI_STE: { opcode: 0x03, layout: cmd('CFGI_STE', SSEC, SID, ['Leaf', 1, 0, 1]) },
  CFGI_STE_RANGE: { opcode: 0x04, layout: cmd('CFGI_STE_RANGE', SSEC, SID, ['Range', 1, 0, 5]) },
  CFGI_CD: { opcode: 0x05, layout: cmd('CFGI_CD', SSEC, SSID, SID, ['Leaf', 1, 0, 1]) },
  CFGI_CD_ALL: { opcode: 0x06, layout: cmd('CFGI_CD_ALL', SSEC, SID) },
  TLBI_NH_ALL: { opcode: 0x10, layout: cmd('TLBI_NH_ALL', VMID) },
  TLBI_NH_ASID: { opcode: 0x11, layout: cmd('TLBI_NH_ASID', VMID, ASID) },
  TLBI_NH_VA: {
    opcode: 0x12,
    layout: cmd('TLBI_NH_VA', ...TLBI_RANGE_WORD0, VMID, ASID, ...TLBI_ADDR_WORD1),
  },
  TLBI_NH_VAA: {
    opcode: 0x13,
    layout: cmd('TLBI_NH_VAA', ...TLBI_RANGE_WORD0, VMID, ...TLBI_ADDR_WORD1),
  },
  TLBI_EL3_ALL: { opcode: 0x18, layout: cmd('TLBI_EL3_ALL') },
  TLBI_EL3_VA: {
    opcode: 0x1a,
    layout: cmd('TLBI_EL3_VA', ...TLBI_RANGE_WORD0, ...TLBI_ADDR_WORD1),
  },
  TLBI_EL2_ALL: { opcode: 0x20, layout: cmd('TLBI_EL2_ALL') },
  TLBI_EL2_ASID: { opcode: 0x21, layout: cmd('TLBI_EL2_ASID', ASID) },
  TLBI_EL2_VA: {
    opcode: 0x22,
    layout: cmd('TLBI_EL2_VA', ...TLBI_RANGE_WORD0, ASID, ...TLBI_ADDR_WORD1),
  },
  TLBI_EL2_VAA: {
    opcode: 0x23,
    layout: cmd('TLBI_EL2_VAA', ...TLBI_RANGE_WORD0, ...TLBI_ADDR_WORD1),
  },
  TLBI_S12_VMALL: { opcode: 0x28, layout: cmd('TLBI_S12_VMALL', VMID) },
  TLBI_S2_IPA: {
    opcode: 0x2a,
    layout: cmd(
      'TLBI_S2_IPA',
      ...TLBI_RANGE_WORD0,
      VMID,
      ['Leaf', 1, 0, 1],
      ['TTL', 1, 8, 2],
      ['TG', 1, 10, 2],
      ['Address', 1, 12, 40, 'addr'],
    ),
  },
  TLBI_NSNH_ALL: { opcode: 0x30, layout: cmd('TLBI_NSNH_ALL') },
  ATC_INV: {
    opcode: 0x40,
    layout: cmd(
      'ATC_INV',
      ['Global', 0, 9, 1],
      SSV,
      SSID,
      SID,
      ['Size', 1, 0, 6],
      ['Address', 1, 12, 52, 'addr'],
    ),
  },
  PRI_RESP: {
    opcode: 0x41,
    layout: cmd('PRI_RESP', SSV, SSID, SID, ['PRGIndex', 1, 0, 9], ['Resp', 1, 12, 2]),
  },
  RESUME: { opcode: 0x44, layout: cmd('RESUME', ['Resp', 0, 12, 2], SID, ['STAG', 1, 0, 16]) },
  STALL_TERM: { opcode: 0x45, layout: cmd('STALL_TERM', SID) },
  CMD_SYNC: {
    opcode: 0x46,
    layout: cmd(
      'CMD_SYNC',
      ['CS', 0, 12, 2],
      ['MSH', 0, 22, 2],
      ['MSIAttr', 0, 24, 4],
      ['MSIData', 0, 32, 32],
      ['MSIAddr', 1, 2, 50, 'addr'],
    ),
  },
} as const;

/** A command's name. */
export type SmmuCommandName = keyof typeof SMMU_COMMANDS;

/** PRI_RESP.Resp values. */
export const SMMU_PRI_RESP = { DENY: 0, FAIL: 1, SUCCESS: 2 } as const;
/** RESUME.Resp values. */
export const SMMU_RESUME_RESP = { TERMINATE: 0, RETRY: 1, ABORT: 2 } as const;
/** ATC_INV.Size meaning "the whole address space". */
export const SMMU_ATC_INV_SIZE_ALL = 52;
/** CMDQ_CONS.SMMU_CERROR values. */
export const SMMU_CERROR = { NONE: 0, ILL: 1, ABT: 2, ATC_INV_SYNC: 3 } as const;

const BY_OPCODE = new Map<number, SmmuCommandName>(
  (Object.entries(SMMU_COMMANDS) as [SmmuCommandName, { opcode: number }][]).map(([n, c]) => [
    c.opcode,
    n,
  ]),
);

/** A decoded command. */
export interface DecodedSmmuCommand {
  /** Bits 7:0 of word 0. */
  readonly opcode: number;
  /** The command's name, or undefined for an opcode this model does not know. */
  readonly name: SmmuCommandName | undefined;
  /** Its fields by name (empty for an unknown opcode). */
  readonly fields: BitFieldValues;
}

/** Name and fields of a command. */
export function decodeSmmuCommand(
  words: readonly [bigint, bigint] | readonly bigint[],
): DecodedSmmuCommand {
  const opcode = Number((words[0] ?? 0n) & 0xffn);
  const name = BY_OPCODE.get(opcode);
  if (name === undefined) return { opcode, name, fields: {} };
  return { opcode, name, fields: SMMU_COMMANDS[name].layout.decode(words) };
}

/** The two words of command `name` with `values` (missing fields zero). */
export function encodeSmmuCommand(
  name: SmmuCommandName,
  values: BitFieldInput = {},
): [bigint, bigint] {
  const c = SMMU_COMMANDS[name];
  if (c === undefined) throw new TypeError(`no SMMUv3 command ${String(name)}`);
  const words = c.layout.encode(values);
  return [(words[0] as bigint) | BigInt(c.opcode), words[1] as bigint];
}

/** The opcode of a command name. */
export function smmuCommandOpcode(name: SmmuCommandName): number {
  return SMMU_COMMANDS[name].opcode;
}

function cmd(
  name: string,
  ...specs: readonly (
    | readonly [string, number, number, number]
    | readonly [string, number, number, number, 'addr']
  )[]
): BitLayout {
  return new BitLayout(name, 2, bitFields(...specs));
}
