// SMMUv3 structure codecs: ID registers and hw_info, STE/CD against the
// QEMU qtest vector, commands, events and PRI entries against the spec's
// section-5 vectors, round trips of every command, and the vSTE check.
import {
  EIO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  structs,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BitLayout,
  Device,
  decodeSmmuCommand,
  decodeSmmuEvent,
  decodeSmmuIdRegisters,
  encodeSmmuCommand,
  encodeSmmuEvent,
  encodeSmmuIdRegisters,
  FrameAllocator,
  makeS1Cd,
  PhysicalMemory,
  SMMU_CD,
  SMMU_COMMANDS,
  SMMU_ID_REGISTERS,
  SMMU_PRI_ENTRY,
  SMMU_STE,
  SMMU_STRTAB_L1_DESC,
  type SmmuCommandName,
  Smmuv3Iommu,
  validateVste,
} from '../src/index.js';

function randomFields(layout: BitLayout, seed: number): Record<string, number> {
  let s = seed >>> 0 || 1;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  const out: Record<string, number> = {};
  for (const f of layout.fields) {
    const width = Math.min(f.width, 48);
    let v = (next() * 2 ** 16 + (next() & 0xffff)) % 2 ** width;
    if (f.address === true) v = v * 2 ** f.lo;
    if (v >= 2 ** 53) v = 0;
    out[f.name] = v;
  }
  return out;
}

describe('ID registers', () => {
  it('every register round-trips every field', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const values = Object.fromEntries(
          Object.entries(SMMU_ID_REGISTERS).map(([name, layout]) => [
            name,
            randomFields(layout, seed + name.length),
          ]),
        );
        const regs = encodeSmmuIdRegisters(values);
        expect(decodeSmmuIdRegisters(regs)).toEqual(values);
      }),
      { numRuns: 100 },
    );
  });

  it('defaults describe a realistic SMMUv3.2 and hw_info carries the raw words', () => {
    const memory = new PhysicalMemory();
    const smmu = new Smmuv3Iommu(
      { name: 's', model: 'smmuv3' },
      { memory, allocator: new FrameAllocator(memory) },
    );
    const d = smmu.decodedRegisters();
    expect(d.IDR0).toMatchObject({
      S2P: 1,
      S1P: 1,
      TTF: 2,
      COHACC: 1,
      HTTU: 2,
      ATS: 1,
      PRI: 1,
      ASID16: 1,
      VMID16: 1,
      CD2L: 1,
      TTENDIAN: 2,
      STALL_MODEL: 0,
      TERM_MODEL: 1,
      ST_LEVEL: 1,
      HYP: 0,
    });
    expect(d.IDR1).toMatchObject({ SIDSIZE: 16, SSIDSIZE: 20, CMDQS: 19, EVENTQS: 19, PRIQS: 19 });
    expect(d.IDR3).toMatchObject({ RIL: 1, BBML: 2, FWB: 1 });
    expect(d.IDR5).toMatchObject({ OAS: 5, GRAN4K: 1, GRAN16K: 1, GRAN64K: 1, VAX: 0 });
    expect(d.IIDR).toMatchObject({ Implementer: 0x43b });
    expect(d.AIDR).toMatchObject({ ArchMajorRev: 0, ArchMinorRev: 2 });
    const dev = new Device({ name: '0000:00:01.0', pasidBits: 8 });
    const info = smmu.hwInfo(dev);
    expect(info.type).toBe(IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
    expect(info.capabilities).toBe(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING));
    expect(info.maxPasidLog2).toBe(8);
    const regs = smmu.registers();
    expect(structs.iommu_hw_info_arm_smmuv3.decode(info.data)).toEqual({
      flags: 0,
      __reserved: 0,
      idr: [regs.IDR0, regs.IDR1, regs.IDR2, regs.IDR3, regs.IDR4, regs.IDR5].map(Number),
      iidr: Number(regs.IIDR),
      aidr: Number(regs.AIDR),
    });
    const plain = new Smmuv3Iommu(
      {
        name: 't',
        model: 'smmuv3',
        dirtyTracking: false,
        ats: false,
        pri: false,
        nesting: false,
        pasidBits: 0,
      },
      { memory, allocator: new FrameAllocator(memory, { base: 2 ** 37 }) },
      { twoLevelStreamTable: false, sidBits: 8 },
    );
    expect(plain.decodedRegisters().IDR0).toMatchObject({
      HTTU: 0,
      ATS: 0,
      PRI: 0,
      S2P: 0,
      ST_LEVEL: 0,
    });
    expect(plain.hwInfo(dev)).toMatchObject({ capabilities: 0n, maxPasidLog2: 0 });
  });
});

describe('STE and CD (QEMU qtest vector 3)', () => {
  it('encodes the qtest STE and CD words', () => {
    const ste = SMMU_STE.encode({
      V: 1,
      Config: 5,
      S1ContextPtr: 0x4e178fc0,
      S2T0SZ: 20,
      S2SL0: 2,
      S2TG: 0,
      S2PS: 5,
      S2AA64: 1,
      S2TTB: 0x4e4d0000,
    });
    expect(ste.slice(0, 4)).toEqual([0x4e178fcbn, 0n, 0x000d0094_00000000n, 0x4e4d0000n]);
    const cd = SMMU_CD.encode({
      T0SZ: 16,
      TG0: 0,
      EPD1: 1,
      V: 1,
      IPS: 4,
      AA64: 1,
      R: 1,
      A: 1,
      ASID: 0x1e20,
      TTB0: 0x4e4d0000,
      NSCFG0: 1,
    });
    expect(cd.slice(0, 2)).toEqual([0x1e206204_c0000010n, 0x4e4d0001n]);
    expect(SMMU_STE.decode(ste).S1ContextPtr).toBe(0x4e178fc0);
    expect(SMMU_STRTAB_L1_DESC.encode({ Span: 9, L2Ptr: 0x12340000 })).toEqual([0x12340009n]);
  });

  it('round-trips random STE and CD fields', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        for (const layout of [SMMU_STE, SMMU_CD]) {
          const v = randomFields(layout, seed);
          expect(layout.decode(layout.encode(v))).toEqual(v);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("the driver's stage-1 CD", () => {
    const cd = SMMU_CD.decode(
      makeS1Cd({
        ttb0: 0x1000000,
        inputBits: 48,
        outputBits: 48,
        granule: 4096,
        asid: 7,
        stall: true,
        dirty: true,
      }),
    );
    expect(cd).toMatchObject({
      T0SZ: 16,
      IR0: 1,
      OR0: 1,
      SH0: 3,
      EPD1: 1,
      V: 1,
      IPS: 5,
      S: 1,
      HA: 1,
      HD: 1,
      ASID: 7,
      MAIR_LO: 0xf404ff44,
    });
  });

  it('rejects out-of-range values and unknown fields', () => {
    expect(() => SMMU_STE.encode({ Config: 8 })).toThrow(RangeError);
    expect(() => SMMU_STE.encode({ S1ContextPtr: 0x20 })).toThrow(RangeError); // not 64-byte aligned
    expect(() => SMMU_STE.encode({ Bogus: 1 })).toThrow(TypeError);
  });
});

describe('commands (vector 10)', () => {
  it('TLBI_NH_VA and CFGI_CD words, and the VMID rewrite a vIOMMU makes', () => {
    const tlbi = encodeSmmuCommand('TLBI_NH_VA', { ASID: 5, Leaf: 1, Address: 0x8080604000 });
    expect(tlbi).toEqual([0x0005_0000_0000_0012n, 0x0000_0080_8060_4001n]);
    const d = decodeSmmuCommand(tlbi);
    expect(d).toMatchObject({
      opcode: 0x12,
      name: 'TLBI_NH_VA',
      fields: { ASID: 5, VMID: 0, Leaf: 1, Address: 0x8080604000 },
    });
    expect(encodeSmmuCommand('TLBI_NH_VA', { ...d.fields, VMID: 3 })[0]).toBe(
      0x0005_0003_0000_0012n,
    );
    expect(encodeSmmuCommand('CFGI_CD', { SID: 0x20, SSID: 0, Leaf: 1 })).toEqual([
      0x0000_0020_0000_0005n,
      1n,
    ]);
  });

  it('every command round-trips its fields; unknown opcodes decode without a name', () => {
    for (const name of Object.keys(SMMU_COMMANDS) as SmmuCommandName[]) {
      const v = randomFields(SMMU_COMMANDS[name].layout, name.length * 977);
      const words = encodeSmmuCommand(name, v);
      expect(decodeSmmuCommand(words)).toEqual({
        opcode: SMMU_COMMANDS[name].opcode,
        name,
        fields: v,
      });
    }
    expect(decodeSmmuCommand([0x7fn, 0n])).toEqual({ opcode: 0x7f, name: undefined, fields: {} });
  });
});

describe('events and PRI entries (vectors 9 and 11)', () => {
  it('F_TRANSLATION for SID 8, read, stage 1; the vEVENT rewrite to vSID 0x20', () => {
    const words = encodeSmmuEvent('F_TRANSLATION', { SID: 8, RnW: 1, InputAddr: 0x8080604567 });
    expect(words.slice(0, 3)).toEqual([
      0x0000_0008_0000_0010n,
      0x0000_0008_0000_0000n,
      0x8080604567n,
    ]);
    expect(decodeSmmuEvent(words)).toMatchObject({
      id: 0x10,
      name: 'F_TRANSLATION',
      fields: { SID: 8, RnW: 1, S2: 0 },
    });
    expect(encodeSmmuEvent('F_TRANSLATION', { SID: 0x20, RnW: 1 })[0]).toBe(0x0000_0020_0000_0010n);
    const fetch = encodeSmmuEvent('F_CD_FETCH', { SID: 1, FetchAddr: 0x12345678 });
    expect(decodeSmmuEvent(fetch).fields.FetchAddr).toBe(0x12345678);
    expect(decodeSmmuEvent(encodeSmmuEvent('C_BAD_STE', { SID: 3 })).name).toBe('C_BAD_STE');
  });

  it('PRI request: SID 0x10, SSID 5, R+W, last, PRGI 3, page 0x7f0000001000', () => {
    const words = SMMU_PRI_ENTRY.encode({
      SID: 0x10,
      SSID: 5,
      SSV: 1,
      Read: 1,
      Write: 1,
      Last: 1,
      PRGIndex: 3,
      Address: 0x7f0000001000,
    });
    expect(words).toEqual([0xf000_0005_0000_0010n, 0x0000_7f00_0000_1003n]);
  });
});

describe('iommufd vSTE check (arm_smmu_validate_vste)', () => {
  it('V=0 is an all-zero abort vSTE', () => {
    expect(validateVste([0x4e178fcan, 0x30000000n])).toEqual({
      ok: true,
      value: { ste0: 0n, ste1: 0n, config: 0, enableAts: false },
    });
  });
  it('bits outside the allowed masks, other configs and EATS 2/3 are EIO', () => {
    expect(validateVste([0x4e178fcbn | (1n << 58n), 0n])).toMatchObject({ ok: false, errno: EIO });
    expect(validateVste([0x4e178fcbn, 1n << 19n])).toMatchObject({ ok: false, errno: EIO }); // MEV
    expect(validateVste([1n | (6n << 1n), 0n])).toMatchObject({ ok: false, errno: EIO });
    expect(validateVste([1n | (7n << 1n), 0n])).toMatchObject({ ok: false, errno: EIO });
    expect(validateVste([0x4e178fcbn, 2n << 28n])).toMatchObject({ ok: false, errno: EIO });
  });
  it('a valid stage-1 vSTE keeps its words minus EATS, which turns ATS on', () => {
    const r = validateVste([0x4e178fcbn | (20n << 59n), (1n << 28n) | 2n | (1n << 27n)]);
    expect(r).toEqual({
      ok: true,
      value: {
        ste0: 0x4e178fcbn | (20n << 59n),
        ste1: 2n | (1n << 27n),
        config: 5,
        enableAts: true,
      },
    });
    expect(validateVste([1n | (4n << 1n), 1n << 28n])).toMatchObject({
      ok: true,
      value: { config: 4, enableAts: false },
    });
  });
});
