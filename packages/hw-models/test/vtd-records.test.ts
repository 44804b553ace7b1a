import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bytesToWords,
  decodeCap,
  decodeEcap,
  decodeQiDescriptor,
  deviceTlbRange,
  encodeCap,
  encodeEcap,
  encodeQiDescriptor,
  frcdLayout,
  getBits,
  pageRequestLayout,
  pasidEntryLayout,
  QI_TYPE,
  qiLayouts,
  setBits,
  smContextEntryLayout,
  smRootEntryLayout,
  vtdCapabilities,
  wordsToQwords,
} from '../src/index.js';

const qw = (bytes: Uint8Array) => wordsToQwords(bytesToWords(bytes));

describe('bit fields', () => {
  it('set then get any field up to 52 bits, across words', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 52 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (lsb, width, r) => {
          const value = Math.floor(r * (2 ** width - 1));
          const words = new Uint32Array(8).fill(0xffffffff);
          setBits(words, lsb, width, value);
          expect(getBits(words, lsb, width)).toBe(value);
          // Neighbouring bits are untouched.
          if (lsb > 0) expect(getBits(words, lsb - 1, 1)).toBe(1);
          if (lsb + width < 256) expect(getBits(words, lsb + width, 1)).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('CAP_REG / ECAP_REG', () => {
  it('round-trip every field', () => {
    const capNames = Object.keys(decodeCap(0n));
    const ecapNames = Object.keys(decodeEcap(0n));
    // Every bit that belongs to a field survives decode then encode; reserved bits drop.
    const capMask = encodeCap(decodeCap((1n << 64n) - 1n));
    const ecapMask = encodeEcap(decodeEcap((1n << 64n) - 1n));
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        expect(encodeCap(decodeCap(v))).toBe(v & capMask);
        expect(encodeEcap(decodeEcap(v))).toBe(v & ecapMask);
      }),
      { numRuns: 100 },
    );
    // Every field alone round-trips at its maximum.
    for (const name of capNames) {
      const field = decodeCap((1n << 64n) - 1n)[name as keyof ReturnType<typeof decodeCap>];
      const v = encodeCap({ [name]: field });
      expect(decodeCap(v)[name as keyof ReturnType<typeof decodeCap>]).toBe(field);
    }
    for (const name of ecapNames) {
      const field = decodeEcap((1n << 64n) - 1n)[name as keyof ReturnType<typeof decodeEcap>];
      const v = encodeEcap({ [name]: field });
      expect(decodeEcap(v)[name as keyof ReturnType<typeof decodeEcap>]).toBe(field);
    }
  });

  it('QEMU defaults and spec vector 15 (scalable mode, x-flts)', () => {
    const { cap, ecap } = vtdCapabilities({
      inputBits: 48,
      pageSizes: [4096, 2 ** 21, 2 ** 30],
      pasidBits: 20,
      nesting: true,
      dirtyTracking: true,
      ats: true,
      pri: true,
    });
    const c = decodeCap(cap);
    expect(c).toMatchObject({
      FRO: 0x22,
      NFR: 0,
      ND: 6,
      MAMV: 18,
      PSI: 1,
      SSLPS: 3,
      SAGAW: 6,
      MGAW: 47,
    });
    expect(cap & 0x600n).toBe(0x600n);
    expect(cap & 0x3f0000n).toBe(0x2f0000n);
    expect(cap & (0x3ffn << 24n)).toBe(0x22n << 24n);
    const e = decodeEcap(ecap);
    expect(e).toMatchObject({
      QI: 1,
      IR: 1,
      IRO: 0xf,
      MHMV: 15,
      SMTS: 1,
      FSTS: 1,
      SSTS: 1,
      NEST: 1,
      SSADS: 1,
      PASID: 1,
      PSS: 19,
      PRS: 1,
      DT: 1,
    });
    expect(ecap & (1n << 43n)).not.toBe(0n);
    expect(ecap & (1n << 47n)).not.toBe(0n);
  });
});

describe('context structures', () => {
  it('spec vector 2: SM root, context, PASID entries', () => {
    expect(
      wordsToQwords(smRootEntryLayout.encode({ lowerPresent: 1, lowerContextTable: 0x10001000 })),
    ).toEqual([0x10001001n, 0n]);
    expect(
      wordsToQwords(smContextEntryLayout.encode({ present: 1, pasidDir: 0x10030000 }))[0],
    ).toBe(0x10030001n);
    expect(
      wordsToQwords(
        pasidEntryLayout.encode({ present: 1, aw: 2, pgtt: 2, ssptptr: 0x10010000 }),
      )[0],
    ).toBe(0x10010089n);
    const fs = wordsToQwords(pasidEntryLayout.encode({ present: 1, pgtt: 1, fsptptr: 0x10010000 }));
    expect(fs[0]).toBe(0x41n);
    expect(fs[2]).toBe(0x10010000n);
    expect(wordsToQwords(pasidEntryLayout.encode({ present: 1, pgtt: 4 }))[0]).toBe(0x101n);
    const decoded = pasidEntryLayout.decode(
      pasidEntryLayout.encode({
        present: 1,
        did: 0x1234,
        fspm: 1,
        sre: 1,
        wpe: 1,
        eafe: 1,
        ssade: 1,
        fsptptr: 0x7f_1234_5000,
      }),
    );
    expect(decoded).toMatchObject({
      did: 0x1234,
      fspm: 1,
      sre: 1,
      wpe: 1,
      eafe: 1,
      ssade: 1,
      fsptptr: 0x7f_1234_5000,
    });
  });
});

describe('QI descriptors', () => {
  it('spec vector 6: PASID-IOTLB page-selective and domain-selective IOTLB', () => {
    expect(
      qw(
        encodeQiDescriptor(QI_TYPE.PASID_IOTLB, {
          granularity: 3,
          did: 1,
          pasid: 0,
          am: 0,
          addr: 0x10200000,
        }),
      ),
    ).toEqual([0x10036n, 0x10200000n, 0n, 0n]);
    expect(qw(encodeQiDescriptor(QI_TYPE.IOTLB, { granularity: 2, did: 1 }))[0]).toBe(0x10022n);
  });

  it('every type round-trips its fields', () => {
    for (const [type, layout] of Object.entries(qiLayouts)) {
      const values: Record<string, number> = {};
      for (const [name, , width, scale = 1] of layout.fields) {
        if (name === 'type') continue;
        values[name] = (2 ** Math.min(width, 20) - 1) * scale;
      }
      const bytes = encodeQiDescriptor(Number(type) as keyof typeof qiLayouts, values as never);
      const decoded = decodeQiDescriptor(bytes);
      expect(decoded.type).toBe(Number(type));
      expect(decoded.fields).toMatchObject({ ...values, type: Number(type) });
    }
    expect(decodeQiDescriptor(new Uint8Array(32)).fields).toBeNull();
  });

  it('page group response (type 9) and device-TLB size encoding', () => {
    const d = qw(
      encodeQiDescriptor(QI_TYPE.PAGE_GROUP_RESPONSE, {
        pasidPresent: 1,
        pasid: 5,
        rid: 0x10,
        responseCode: 0,
        lastPage: 1,
        prgIndex: 3,
      }),
    );
    expect(d[0]).toBe(0x0000_0005_0010_0019n);
    expect(d[1]).toBe(0x1cn);
    expect(deviceTlbRange(0x10000, 0)).toEqual([0x10000, 4096]);
    expect(deviceTlbRange(0x10000, 1)).toEqual([0x10000, 8192]); // bit 12 clear: 8 KiB
    expect(deviceTlbRange(0x10000 + 0x3000, 1)).toEqual([0x10000, 0x8000]);
    expect(deviceTlbRange(2 ** 52 - 4096, 1)).toBeNull();
  });
});

describe('records', () => {
  it('spec vector 7: FRCD read fault reason 6, SID 0x10, page 0x10200000', () => {
    const q = wordsToQwords(
      frcdLayout.encode({ faultInfo: 0x10200000, sid: 0x10, reason: 6, read: 1, fault: 1 }),
    );
    expect(q).toEqual([0x10200000n, 0xc000_0006_0000_0010n]);
  });

  it('spec vector 8: page request RID 0x10, PASID 5, R+W, LPIG, PRGI 3, page 0x7f0000001000', () => {
    const q = wordsToQwords(
      pageRequestLayout.encode({
        type: 1,
        pasidPresent: 1,
        rid: 0x10,
        pasid: 5,
        read: 1,
        write: 1,
        lastPage: 1,
        prgIndex: 3,
        address: 0x7f0000001000,
      }),
    );
    expect(q.slice(0, 2)).toEqual([0x0000_0005_0010_0101n, 0x0000_7f00_0000_101fn]);
  });
});
