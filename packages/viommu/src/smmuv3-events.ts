/**
 * Which SMMUv3 event records reach a guest, and how (arm_smmu_handle_event
 * and arm_vmaster_report_event in 6.17). Only eight event IDs are handled
 * at all (C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD,
 * F_TRANSLATION, F_ADDR_SIZE, F_ACCESS, F_PERMISSION). Of those a stall
 * event goes to the I/O page fault path; a stage-2 fault stays with the
 * host; the rest, for a master with a vmaster (attached to a nested domain
 * of a vIOMMU that has a vDEVICE for it), are copied to the guest with the
 * StreamID field (word 0, bits 63:32) replaced by the vSID. The 32-byte
 * record is otherwise untouched.
 */

/** The event IDs the driver handles (and so may forward). */
export const FORWARDED_SMMU_EVENT_IDS: ReadonlySet<number> = new Set([
  0x04, 0x06, 0x08, 0x0a, 0x10, 0x11, 0x12, 0x13,
]);

/** Where a hardware event record goes. */
export type SmmuEventRoute = 'guest' | 'page-fault' | 'host';

/** The fields of a 32-byte event record that decide its route. */
export interface SmmuEventSummary {
  readonly eventId: number;
  readonly streamId: number;
  readonly stall: boolean;
  readonly stage2: boolean;
}

/** Read the routing fields of a raw 32-byte little-endian event record. */
export function summarizeSmmuEvent(record: Uint8Array): SmmuEventSummary {
  const v = new DataView(record.buffer, record.byteOffset, 32);
  const w0 = v.getBigUint64(0, true);
  const w1 = v.getBigUint64(8, true);
  return {
    eventId: Number(w0 & 0xffn),
    streamId: Number(w0 >> 32n),
    stall: ((w1 >> 31n) & 1n) === 1n,
    stage2: ((w1 >> 39n) & 1n) === 1n,
  };
}

/**
 * Where 6.17 sends an event of a master that has a vmaster: unhandled IDs
 * and stage-2 faults stay with the host, stall events become page faults,
 * the rest go to the guest.
 */
export function routeSmmuEvent(summary: SmmuEventSummary): SmmuEventRoute {
  if (!FORWARDED_SMMU_EVENT_IDS.has(summary.eventId)) return 'host';
  if (summary.stall) return 'page-fault';
  if (summary.stage2) return 'host';
  return 'guest';
}

/** The guest's copy of `record`: the same 32 bytes with the StreamID replaced by `vsid`. */
export function guestSmmuEvent(record: Uint8Array, vsid: number): Uint8Array {
  const out = new Uint8Array(32);
  out.set(record.subarray(0, 32));
  new DataView(out.buffer).setUint32(4, vsid >>> 0, true);
  return out;
}
