/**
 * SMMUv3 event forwarding (hw-formats.md 2.7, arm_smmu_handle_event and
 * arm_vmaster_report_event): which event records a guest sees, and the copy
 * it gets, which differs from the hardware's only in word 0 bits 63:32
 * (StreamID → vSID). Records are built with hw-models' event encoder.
 */
import {
  encodeSmmuEvent,
  SMMU_EVENT_ID,
  type SmmuEventName,
  smmuWordsToBytes,
} from '@iommufd-sim/hw-models';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FORWARDED_SMMU_EVENT_IDS,
  guestSmmuEvent,
  routeSmmuEvent,
  summarizeSmmuEvent,
} from '../src/index.js';

const FORWARDED: readonly SmmuEventName[] = [
  'C_BAD_STE',
  'F_STREAM_DISABLED',
  'C_BAD_SUBSTREAMID',
  'C_BAD_CD',
  'F_TRANSLATION',
  'F_ADDR_SIZE',
  'F_ACCESS',
  'F_PERMISSION',
];

/** The 32 bytes of event `name` with `values`. */
const record = (name: SmmuEventName, values: Record<string, number | bigint> = {}): Uint8Array =>
  smmuWordsToBytes(encodeSmmuEvent(name, values));

/** A raw record with event id `id` and the Stall and S2 bits as given. */
function rawRecord(id: number, sid: number, stall: boolean, s2: boolean): Uint8Array {
  const out = new Uint8Array(32);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(id) | (BigInt(sid) << 32n), true);
  v.setBigUint64(8, (stall ? 1n << 31n : 0n) | (s2 ? 1n << 39n : 0n), true);
  return out;
}

describe('the forwarded event IDs', () => {
  it('are the eight arm_smmu_handle_event takes: C_BAD_STE, F_STREAM_DISABLED, C_BAD_SUBSTREAMID, C_BAD_CD, F_TRANSLATION..F_PERMISSION', () => {
    expect([...FORWARDED_SMMU_EVENT_IDS].sort((a, b) => a - b)).toEqual(
      FORWARDED.map((n) => SMMU_EVENT_ID[n]).sort((a, b) => a - b),
    );
    expect([...FORWARDED_SMMU_EVENT_IDS].sort((a, b) => a - b)).toEqual([
      0x04, 0x06, 0x08, 0x0a, 0x10, 0x11, 0x12, 0x13,
    ]);
  });
});

describe('summarizeSmmuEvent', () => {
  it('reads EventID (word 0 7:0), StreamID (63:32), Stall (word 1 bit 31) and S2 (bit 39)', () => {
    const r = record('F_PERMISSION', {
      SID: 0x21,
      Stall: 1,
      S2: 0,
      STAG: 9,
      InputAddr: 0x1234_5000,
    });
    expect(summarizeSmmuEvent(r)).toEqual({
      eventId: 0x13,
      streamId: 0x21,
      stall: true,
      stage2: false,
    });
    const s2 = record('F_TRANSLATION', { SID: 0xffff_ffff, S2: 1, CLASS: 2 });
    expect(summarizeSmmuEvent(s2)).toEqual({
      eventId: 0x10,
      streamId: 0xffff_ffff,
      stall: false,
      stage2: true,
    });
  });

  it('reads a record through a view that starts inside its buffer', () => {
    const r = record('C_BAD_CD', { SID: 0x102 });
    const big = new Uint8Array(40);
    big.set(r, 8);
    expect(summarizeSmmuEvent(big.subarray(8))).toEqual(summarizeSmmuEvent(r));
  });
});

describe('routeSmmuEvent', () => {
  it('each forwarded ID, not stalled and not stage 2, goes to the guest', () => {
    for (const name of FORWARDED) {
      expect(routeSmmuEvent(summarizeSmmuEvent(record(name, { SID: 5 }))), name).toBe('guest');
    }
  });

  it('a stall of a forwarded ID is an I/O page fault, even at stage 2', () => {
    for (const id of FORWARDED_SMMU_EVENT_IDS) {
      for (const s2 of [false, true]) {
        expect(routeSmmuEvent(summarizeSmmuEvent(rawRecord(id, 1, true, s2)))).toBe('page-fault');
      }
    }
  });

  it('a stage-2 fault that did not stall stays with the host', () => {
    for (const id of FORWARDED_SMMU_EVENT_IDS) {
      expect(routeSmmuEvent(summarizeSmmuEvent(rawRecord(id, 1, false, true)))).toBe('host');
    }
  });

  it('every other event ID stays with the host whatever its bits say', () => {
    const others = Array.from({ length: 256 }, (_, i) => i).filter(
      (id) => !FORWARDED_SMMU_EVENT_IDS.has(id),
    );
    fc.assert(
      fc.property(fc.constantFrom(...others), fc.boolean(), fc.boolean(), (id, stall, s2) => {
        expect(routeSmmuEvent({ eventId: id, streamId: 1, stall, stage2: s2 })).toBe('host');
      }),
    );
    for (const name of [
      'F_UUT',
      'C_BAD_STREAMID',
      'F_CD_FETCH',
      'F_WALK_EABT',
      'E_PAGE_REQUEST',
    ] as const) {
      expect(routeSmmuEvent(summarizeSmmuEvent(record(name))), name).toBe('host');
    }
  });
});

describe('guestSmmuEvent', () => {
  it('only bits 63:32 of word 0 change, to the vSID; the input is left as it was', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (raw, vsid) => {
          const before = raw.slice();
          const out = guestSmmuEvent(raw, vsid);
          expect(out.length).toBe(32);
          expect(raw).toEqual(before);
          const v = new DataView(out.buffer, out.byteOffset, 32);
          const w = new DataView(raw.buffer, raw.byteOffset, 32);
          expect(v.getUint32(4, true)).toBe(vsid);
          expect(v.getUint32(0, true)).toBe(w.getUint32(0, true));
          expect(out.subarray(8)).toEqual(raw.subarray(8));
        },
      ),
    );
  });

  it('the guest copy of a real F_TRANSLATION record keeps every field but the StreamID', () => {
    const r = record('F_TRANSLATION', {
      SID: 0x21,
      SSV: 1,
      SSID: 3,
      RnW: 1,
      CLASS: 2,
      InputAddr: 0xdead_b000,
      IPA: 0x8001_0000,
    });
    const out = guestSmmuEvent(r, 0x101);
    expect(summarizeSmmuEvent(out)).toEqual({ ...summarizeSmmuEvent(r), streamId: 0x101 });
    expect(out.subarray(0, 4)).toEqual(r.subarray(0, 4));
    expect(out.subarray(8)).toEqual(r.subarray(8));
  });

  it('a longer buffer gives its first 32 bytes; a vSID is taken as 32 bits', () => {
    const r = new Uint8Array(48).fill(0xaa);
    const out = guestSmmuEvent(r, -1);
    expect(out.length).toBe(32);
    expect(new DataView(out.buffer).getUint32(4, true)).toBe(0xffff_ffff);
  });
});
