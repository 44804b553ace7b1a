/**
 * convertGuestSmmuCommand: what arm_vsmmu_convert_user_cmd does to one guest
 * CMDQ entry (hw-formats.md 2.6, "What iommufd accepts"). TLBI_NSNH_ALL
 * becomes TLBI_NH_ALL of the VMID; the four TLBI_NH_* get exactly bits 47:32
 * overwritten; ATC_INV / CFGI_CD / CFGI_CD_ALL get exactly bits 63:32
 * replaced by the physical SID; every other opcode is refused (EIO). The
 * guest commands are built with hw-models' encoder, an independent writer of
 * the same layouts.
 */
import {
  decodeSmmuCommand,
  encodeSmmuCommand,
  SMMU_COMMANDS,
  type SmmuCommandName,
} from '@iommufd-sim/hw-models';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  convertGuestSmmuCommand,
  GUEST_COMMAND_BATCH,
  GUEST_SMMU_OPCODES,
  guestCommandBytes,
  guestCommandWords,
} from '../src/index.js';

const U64 = (1n << 64n) - 1n;
const VMID_BITS = 0xffffn << 32n;
const SID_BITS = 0xffff_ffffn << 32n;
const u64 = fc.bigInt({ min: 0n, max: U64 });
const vmid = fc.integer({ min: 0, max: 0xffff });
const sid32 = fc.integer({ min: 0, max: 0xffff_ffff });

/** A command word 0 with `opcode` in bits 7:0 and anything elsewhere. */
const withOpcode = (opcode: number) => u64.map((w) => (w & ~0xffn) | BigInt(opcode));

const noLookup = (): number | undefined => {
  throw new Error('the SID lookup must not be called for this opcode');
};

function converted(r: ReturnType<typeof convertGuestSmmuCommand>): readonly [bigint, bigint] {
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  return r.words;
}

describe('the opcodes and the batch size', () => {
  it('GUEST_SMMU_OPCODES are the architecture opcodes of the same names', () => {
    for (const [name, opcode] of Object.entries(GUEST_SMMU_OPCODES)) {
      expect(SMMU_COMMANDS[name as SmmuCommandName].opcode, name).toBe(opcode);
    }
    expect(Object.keys(GUEST_SMMU_OPCODES).sort()).toEqual(
      [
        'ATC_INV',
        'CFGI_CD',
        'CFGI_CD_ALL',
        'TLBI_NH_ALL',
        'TLBI_NH_ASID',
        'TLBI_NH_VA',
        'TLBI_NH_VAA',
        'TLBI_NSNH_ALL',
      ].sort(),
    );
  });

  it('commands are issued CMDQ_BATCH_ENTRIES - 1 = 63 at a time', () => {
    expect(GUEST_COMMAND_BATCH).toBe(63);
  });
});

describe('TLBI_NSNH_ALL', () => {
  it('becomes TLBI_NH_ALL of the vIOMMU VMID, word 1 cleared, whatever the guest wrote', () => {
    fc.assert(
      fc.property(withOpcode(0x30), u64, vmid, (w0, w1, v) => {
        const out = converted(convertGuestSmmuCommand([w0, w1], v, noLookup));
        expect(out).toEqual([0x10n | (BigInt(v) << 32n), 0n]);
        expect(decodeSmmuCommand(out as [bigint, bigint])).toMatchObject({
          name: 'TLBI_NH_ALL',
          fields: { VMID: v },
        });
      }),
    );
  });
});

describe('TLBI_NH_VA, TLBI_NH_VAA, TLBI_NH_ALL, TLBI_NH_ASID', () => {
  const names = ['TLBI_NH_VA', 'TLBI_NH_VAA', 'TLBI_NH_ALL', 'TLBI_NH_ASID'] as const;

  it('exactly bits 47:32 of word 0 become the VMID; every other bit of both words is untouched', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), u64, u64, vmid, (name, raw0, w1, v) => {
        const w0 = (raw0 & ~0xffn) | BigInt(GUEST_SMMU_OPCODES[name]);
        const [o0, o1] = converted(convertGuestSmmuCommand([w0, w1], v, noLookup));
        expect((o0 & VMID_BITS) >> 32n).toBe(BigInt(v));
        expect(o0 & ~VMID_BITS).toBe(w0 & ~VMID_BITS);
        expect(o1).toBe(w1);
      }),
    );
  });

  it("a guest TLBI_NH_VA keeps its ASID, range and address; only the VMID is the host's", () => {
    const guest = encodeSmmuCommand('TLBI_NH_VA', {
      VMID: 0x7777,
      ASID: 0x42,
      NUM: 3,
      SCALE: 1,
      Leaf: 1,
      TTL: 3,
      TG: 1,
      Address: 0x8080_6000,
    }) as [bigint, bigint];
    const out = converted(convertGuestSmmuCommand(guest, 5, noLookup));
    expect(decodeSmmuCommand(out as [bigint, bigint]).fields).toEqual({
      ...decodeSmmuCommand(guest).fields,
      VMID: 5,
    });
  });

  it('a VMID wider than 16 bits is cut to its low 16, never spilling into the ASID', () => {
    const guest = encodeSmmuCommand('TLBI_NH_ASID', { VMID: 0, ASID: 0xabcd }) as [bigint, bigint];
    const out = converted(convertGuestSmmuCommand(guest, 0x1_2345, noLookup));
    expect(decodeSmmuCommand(out as [bigint, bigint]).fields).toMatchObject({
      VMID: 0x2345,
      ASID: 0xabcd,
    });
  });
});

describe('ATC_INV, CFGI_CD, CFGI_CD_ALL', () => {
  const names = ['ATC_INV', 'CFGI_CD', 'CFGI_CD_ALL'] as const;

  it('the lookup gets bits 63:32; exactly those bits become the physical SID, nothing else changes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...names), u64, u64, vmid, sid32, (name, raw0, w1, v, psid) => {
        const w0 = (raw0 & ~0xffn) | BigInt(GUEST_SMMU_OPCODES[name]);
        const asked: number[] = [];
        const r = convertGuestSmmuCommand([w0, w1], v, (vsid) => {
          asked.push(vsid);
          return psid;
        });
        const [o0, o1] = converted(r);
        expect(asked).toEqual([Number(w0 >> 32n)]);
        expect(o0 >> 32n).toBe(BigInt(psid));
        expect(o0 & ~SID_BITS).toBe(w0 & ~SID_BITS);
        expect(o1).toBe(w1);
      }),
    );
  });

  it('an ATC_INV keeps its SSID, size and address; a CFGI_CD its SSID and leaf', () => {
    const atc = encodeSmmuCommand('ATC_INV', {
      SID: 0x101,
      SSV: 1,
      SSID: 7,
      Global: 1,
      Size: 3,
      Address: 0x4000_0000,
    }) as [bigint, bigint];
    const out = converted(convertGuestSmmuCommand(atc, 9, (v) => (v === 0x101 ? 0x21 : undefined)));
    expect(decodeSmmuCommand(out as [bigint, bigint])).toMatchObject({
      name: 'ATC_INV',
      fields: { ...decodeSmmuCommand(atc).fields, SID: 0x21 },
    });
    const cd = encodeSmmuCommand('CFGI_CD', { SID: 0x102, SSID: 0x55, Leaf: 1 }) as [
      bigint,
      bigint,
    ];
    const outCd = converted(convertGuestSmmuCommand(cd, 9, () => 0x22));
    expect(decodeSmmuCommand(outCd as [bigint, bigint]).fields).toEqual({
      ...decodeSmmuCommand(cd).fields,
      SID: 0x22,
    });
  });

  it('a physical SID up to 2^32 - 1 is written whole', () => {
    const cmd = encodeSmmuCommand('CFGI_CD_ALL', { SID: 1 }) as [bigint, bigint];
    const [o0] = converted(convertGuestSmmuCommand(cmd, 0, () => 0xffff_fffe));
    expect(o0 >> 32n).toBe(0xffff_fffen);
  });

  it('a vSID no vDEVICE answers to is refused, with the vSID in the reason', () => {
    for (const name of names) {
      const cmd = encodeSmmuCommand(name, { SID: 0xbeef }) as [bigint, bigint];
      const r = convertGuestSmmuCommand(cmd, 1, () => undefined);
      expect(r.ok, name).toBe(false);
      expect(r.ok ? '' : r.reason).toContain('0xbeef');
    }
  });
});

describe('every other opcode', () => {
  const allowed = new Set<number>(Object.values(GUEST_SMMU_OPCODES));
  const others = Array.from({ length: 256 }, (_, i) => i).filter((op) => !allowed.has(op));

  it('is refused without a SID lookup, naming the opcode (CFGI_STE, CMD_SYNC, stage-2 TLBIs, PRI_RESP, ...)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...others), u64, u64, vmid, (opcode, raw0, w1, v) => {
        const w0 = (raw0 & ~0xffn) | BigInt(opcode);
        const r = convertGuestSmmuCommand([w0, w1], v, noLookup);
        expect(r.ok).toBe(false);
        expect(r.ok ? '' : r.reason).toContain(`0x${opcode.toString(16)}`);
      }),
    );
  });

  it('the named refusals the spec lists', () => {
    for (const name of [
      'CFGI_STE',
      'CFGI_STE_RANGE',
      'CMD_SYNC',
      'PRI_RESP',
      'RESUME',
      'TLBI_S2_IPA',
      'TLBI_S12_VMALL',
      'TLBI_EL2_ALL',
      'PREFETCH_CONFIG',
    ] as const) {
      const cmd = encodeSmmuCommand(name, {}) as [bigint, bigint];
      expect(convertGuestSmmuCommand(cmd, 1, noLookup).ok, name).toBe(false);
    }
  });
});

describe('guestCommandWords / guestCommandBytes', () => {
  it('read and write the two little-endian words of a 16-byte entry, at any offset', () => {
    fc.assert(
      fc.property(u64, u64, fc.integer({ min: 1, max: 40 }), (w0, w1, offset) => {
        const bytes = guestCommandBytes([w0, w1]);
        expect(bytes.length).toBe(16);
        const v = new DataView(bytes.buffer);
        expect(v.getBigUint64(0, true)).toBe(w0);
        expect(v.getBigUint64(8, true)).toBe(w1);
        const big = new Uint8Array(offset + 16 + 8);
        big.set(bytes, offset);
        expect(guestCommandWords(big, offset)).toEqual([w0, w1]);
        // A view that does not start at its buffer's beginning reads the same entry.
        expect(guestCommandWords(big.subarray(1), offset - 1)).toEqual([w0, w1]);
      }),
    );
  });
});
