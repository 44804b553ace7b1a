/**
 * Guest SMMUv3 command-queue entries passed through a vIOMMU
 * (arm_vsmmu_convert_user_cmd in 6.17): each 16-byte little-endian entry is
 * rewritten before the host SMMU runs it, so the guest can only touch its
 * own VMID and its own devices:
 *
 * - TLBI_NSNH_ALL becomes TLBI_NH_ALL of the vIOMMU's VMID (word 1 cleared);
 * - TLBI_NH_VA, TLBI_NH_VAA, TLBI_NH_ALL and TLBI_NH_ASID get the VMID
 *   field (47:32) overwritten with the vIOMMU's VMID;
 * - ATC_INV, CFGI_CD and CFGI_CD_ALL carry a virtual StreamID (63:32) that
 *   is looked up among the vDEVICEs and replaced by the physical one; an
 *   unknown vSID is EIO;
 * - everything else (CMD_SYNC, CFGI_STE, PRI_RESP, stage-2 TLBIs...) is EIO.
 */

/** Opcodes the conversion knows (word 0 bits 7:0). */
export const GUEST_SMMU_OPCODES = {
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
} as const;

/**
 * The kernel issues converted commands in batches of CMDQ_BATCH_ENTRIES - 1
 * (63); a command that fails conversion stops the loop before the commands
 * converted since the last batch are issued, though entry_num counts them.
 */
export const GUEST_COMMAND_BATCH = 63;

const VMID_MASK = 0xffffn << 32n;
const SID_MASK = 0xffff_ffffn << 32n;

/** A converted command, or why it was refused. */
export type GuestCommandResult =
  | { readonly ok: true; readonly words: readonly [bigint, bigint] }
  | { readonly ok: false; readonly reason: string };

/**
 * Convert one guest command for `vmid`, translating virtual StreamIDs with
 * `physicalSid` (undefined for an id no vDEVICE answers to). Refusals are
 * the kernel's EIO.
 */
export function convertGuestSmmuCommand(
  words: readonly [bigint, bigint],
  vmid: number,
  physicalSid: (vsid: number) => number | undefined,
): GuestCommandResult {
  const [w0, w1] = words;
  const opcode = Number(w0 & 0xffn);
  const vmidField = BigInt(vmid & 0xffff) << 32n;
  switch (opcode) {
    case GUEST_SMMU_OPCODES.TLBI_NSNH_ALL:
      return { ok: true, words: [BigInt(GUEST_SMMU_OPCODES.TLBI_NH_ALL) | vmidField, 0n] };
    case GUEST_SMMU_OPCODES.TLBI_NH_VA:
    case GUEST_SMMU_OPCODES.TLBI_NH_VAA:
    case GUEST_SMMU_OPCODES.TLBI_NH_ALL:
    case GUEST_SMMU_OPCODES.TLBI_NH_ASID:
      return { ok: true, words: [(w0 & ~VMID_MASK) | vmidField, w1] };
    case GUEST_SMMU_OPCODES.ATC_INV:
    case GUEST_SMMU_OPCODES.CFGI_CD:
    case GUEST_SMMU_OPCODES.CFGI_CD_ALL: {
      const vsid = Number(w0 >> 32n);
      const sid = physicalSid(vsid);
      if (sid === undefined) {
        return { ok: false, reason: `vSID 0x${vsid.toString(16)} names no vDEVICE of this vIOMMU` };
      }
      return { ok: true, words: [(w0 & ~SID_MASK) | (BigInt(sid >>> 0) << 32n), w1] };
    }
    default:
      return {
        ok: false,
        reason: `opcode 0x${opcode.toString(16)} is not a command a guest may issue through the vIOMMU (only TLBI_NH_*, TLBI_NSNH_ALL, ATC_INV, CFGI_CD and CFGI_CD_ALL)`,
      };
  }
}

/** The two little-endian words of the 16-byte entry at `offset` of `bytes`. */
export function guestCommandWords(bytes: Uint8Array, offset = 0): [bigint, bigint] {
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, 16);
  return [v.getBigUint64(0, true), v.getBigUint64(8, true)];
}

/** The 16 little-endian bytes of a command. */
export function guestCommandBytes(words: readonly [bigint, bigint]): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, words[0], true);
  v.setBigUint64(8, words[1], true);
  return out;
}
