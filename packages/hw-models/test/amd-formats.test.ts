import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AMD_INV_ALL_PAGES_ADDRESS,
  amdInvalidationAddress,
  amdInvalidationRange,
  decodeAmdCommand,
  decodeAmdEvent,
  decodeAmdPprEntry,
  decodeDte,
  decodeEfr,
  decodeEfr2,
  EFR_FIELDS,
  EFR2_FIELDS,
  EVENT_FLAG_PR,
  EVENT_FLAG_RW,
  EVENT_IO_PAGE_FAULT,
  efrFromFeatures,
  encodeAmdEvent,
  encodeAmdPprEntry,
  encodeCompletePprRequest,
  encodeCompletionWait,
  encodeDte,
  encodeEfr,
  encodeEfr2,
  encodeInvalidateDevtabEntry,
  encodeInvalidateInterruptTable,
  encodeInvalidateIommuAll,
  encodeInvalidateIommuPages,
  encodeInvalidateIotlbPages,
  PPR_FLAG_GN,
  PPR_FLAG_READ,
  PPR_FLAG_WRITE,
} from '../src/iommu/amd/index.js';

function qwords(bytes: Uint8Array): bigint[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  return [v.getBigUint64(0, true), v.getBigUint64(8, true)];
}

describe('AMD EFR / EFR2', () => {
  it('round-trips every field', () => {
    const arb = fc.record(
      Object.fromEntries(
        EFR_FIELDS.map((f) => [
          f.name,
          f.bits === 1 ? fc.boolean() : fc.integer({ min: 0, max: 2 ** f.bits - 1 }),
        ]),
      ),
    );
    fc.assert(
      fc.property(arb, (fields) => {
        expect(decodeEfr(encodeEfr(fields))).toEqual(fields);
      }),
      { numRuns: 100 },
    );
    const f2 = { SNPAVICSUP: 5, NUM_INT_REMAP_SUP: 1, HT_RANGE_IGNORE: true };
    expect(decodeEfr2(encodeEfr2(f2))).toEqual(f2);
    expect(EFR2_FIELDS.length).toBe(3);
  });

  it('encodes the positions Linux reads (HATS 11:10, PASMAX 36:32, HDSUP 52)', () => {
    expect(encodeEfr({ HATS: 2 })).toBe(2n << 10n);
    expect(encodeEfr({ PASMAX: 15 })).toBe(15n << 32n);
    expect(encodeEfr({ HDSUP: true, HASUP: true })).toBe((1n << 52n) | (1n << 49n));
    const { efr } = efrFromFeatures({
      hostLevels: 5,
      pasidBits: 16,
      dirtyTracking: true,
      ppr: true,
    });
    expect(decodeEfr(efr)).toMatchObject({ HATS: 1, PASMAX: 15, GT: true, PPR: true, HDSUP: true });
    expect(() => encodeEfr({ HATS: 4 })).toThrow(RangeError);
  });
});

describe('AMD DTE (spec vector 12)', () => {
  it('V+TV, Mode 4, root 0x100000, IR+IW, DomainID 5', () => {
    const q = encodeDte({
      valid: true,
      translationValid: true,
      mode: 4,
      hostRoot: 0x100000,
      ir: true,
      iw: true,
      domainId: 5,
    });
    expect(q[0]).toBe(0x6000_0000_0010_0803n);
    expect(q[1]).toBe(0x5n);
  });

  it('round-trips its fields, GCR3 split across three places included', () => {
    const dte = {
      valid: true,
      translationValid: true,
      had: 3,
      mode: 6,
      hostRoot: 0xf_ffff_ffff_f000,
      ppr: true,
      giov: true,
      gv: true,
      glx: 2,
      gcr3: 0xa_bcde_f123_4000,
      ir: true,
      iw: false,
      domainId: 0xbeef,
      iotlb: true,
      intValid: true,
      guestPagingMode: 1,
    };
    expect(decodeDte(encodeDte(dte))).toEqual(dte);
    expect(encodeDte({ had: 3 })[0]).toBe(0x180n);
    expect(encodeDte({ ppr: true })[0]).toBe(1n << 52n);
    expect(encodeDte({ iotlb: true })[1]).toBe(1n << 32n);
  });
});

describe('AMD commands', () => {
  it('INVALIDATE_IOMMU_PAGES: one page, a folded range, everything', () => {
    const one = encodeInvalidateIommuPages({ domainId: 5, address: 0x12345000, size: 4096 });
    expect(qwords(one)).toEqual([0x3000_0005_0000_0000n, 0x0000_0000_1234_5002n]);
    // [0x1f000, 0x21000) straddles 128K: the block holding it is [0, 256K).
    expect(amdInvalidationAddress(0x1f000, 0x2000)).toEqual({ address: 0x1f000n, s: true });
    expect(amdInvalidationRange(0x1f000n, true)).toEqual({ start: 0, size: 0x40000 });
    expect(amdInvalidationAddress(0x10000, 0x10000)).toEqual({ address: 0x17000n, s: true });
    expect(amdInvalidationAddress(0x200000, 0x200000)).toEqual({ address: 0x2ff000n, s: true });
    expect(amdInvalidationRange(0x2ff000n, true)).toEqual({ start: 0x200000, size: 0x200000 });
    const all = decodeAmdCommand(encodeInvalidateIommuPages({ domainId: 7, pasid: 3 }));
    expect(all).toEqual({
      op: 'INVALIDATE_IOMMU_PAGES',
      domainId: 7,
      pasid: 3,
      pde: true,
      range: 'all',
    });
    expect(amdInvalidationRange(AMD_INV_ALL_PAGES_ADDRESS, true)).toBe('all');
  });

  it('every command decodes to what was encoded', () => {
    expect(
      decodeAmdCommand(
        encodeCompletionWait({ address: 0x1000_0008, data: 0x1234_5678_9abcn, store: true }),
      ),
    ).toEqual({
      op: 'COMPLETION_WAIT',
      store: true,
      interrupt: false,
      address: 0x1000_0008,
      data: 0x1234_5678_9abcn,
    });
    expect(decodeAmdCommand(encodeInvalidateDevtabEntry(0x10))).toEqual({
      op: 'INVALIDATE_DEVTAB_ENTRY',
      deviceId: 0x10,
    });
    expect(
      decodeAmdCommand(
        encodeInvalidateIotlbPages({
          deviceId: 0x18,
          maxPending: 32,
          pasid: 0x1234,
          address: 0x5000,
          size: 4096,
        }),
      ),
    ).toEqual({
      op: 'INVALIDATE_IOTLB_PAGES',
      deviceId: 0x18,
      maxPending: 32,
      pasid: 0x1234,
      range: { start: 0x5000, size: 4096 },
    });
    expect(decodeAmdCommand(encodeInvalidateInterruptTable(3))).toEqual({
      op: 'INVALIDATE_INTERRUPT_TABLE',
      deviceId: 3,
    });
    const ppr = encodeCompletePprRequest({ deviceId: 0x10, pasid: 5, tag: 3, status: 0xf });
    expect(qwords(ppr)).toEqual([0x7000_0005_0000_0010n, 0x0000_f003_0000_0004n]);
    expect(decodeAmdCommand(ppr)).toEqual({
      op: 'COMPLETE_PPR_REQUEST',
      deviceId: 0x10,
      pasid: 5,
      tag: 3,
      status: 0xf,
    });
    expect(qwords(encodeInvalidateIommuAll())).toEqual([0x8000_0000_0000_0000n, 0n]);
    const bad = encodeInvalidateIommuAll();
    bad[7] = 0x60;
    expect(decodeAmdCommand(bad)).toEqual({ op: 'ILLEGAL', opcode: 6 });
  });
});

describe('AMD event and PPR log entries', () => {
  it('IO_PAGE_FAULT puts DeviceID, DomainID, flags and code where Linux reads them', () => {
    const bytes = encodeAmdEvent({
      code: EVENT_IO_PAGE_FAULT,
      deviceId: 0x10,
      tag: 0x5,
      flags: EVENT_FLAG_PR | EVENT_FLAG_RW,
      address: 0x7f_0000_1000,
    });
    expect(qwords(bytes)).toEqual([0x2030_0005_0000_0010n, 0x0000_007f_0000_1000n]);
    expect(decodeAmdEvent(bytes)).toEqual({
      code: 2,
      deviceId: 0x10,
      tag: 5,
      flags: 0x30,
      address: 0x7f_0000_1000,
    });
    // A 20-bit PASID splits into dword0 19:16 and dword1 15:0.
    expect(
      decodeAmdEvent(encodeAmdEvent({ code: 2, deviceId: 1, tag: 0xabcde, flags: 0, address: 0 }))
        .tag,
    ).toBe(0xabcde);
  });

  it('PPR entry (spec vector 13)', () => {
    const bytes = encodeAmdPprEntry({
      deviceId: 0x10,
      pasid: 5,
      tag: 3,
      flags: PPR_FLAG_READ | PPR_FLAG_WRITE | PPR_FLAG_GN,
      type: 1,
      address: 0x7f00_0000_1000,
    });
    expect(qwords(bytes)).toEqual([0x1124_0003_0005_0010n, 0x7f00_0000_1000n]);
    const wide = {
      deviceId: 1,
      pasid: 0xf1234,
      tag: 0x3ff,
      flags: 0x144,
      type: 1,
      address: 0x1000,
    };
    expect(decodeAmdPprEntry(encodeAmdPprEntry(wide))).toEqual(wide);
  });
});
