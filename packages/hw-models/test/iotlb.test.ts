import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Iotlb, NO_ASID, newTlbHit } from '../src/index.js';

describe('Iotlb', () => {
  it('hits on the cached page with the offset applied, under the same tags only', () => {
    const tlb = new Iotlb();
    tlb.fill(1, NO_ASID, 0x20_0000, 0x8000_0000, 0x20_0000, 3);
    const hit = newTlbHit();
    expect(tlb.lookup(1, NO_ASID, 0x3f_f123, hit)).toBe(true);
    expect(hit).toEqual({ pa: 0x801f_f123, pageSize: 0x20_0000, prot: 3 });
    expect(tlb.lookup(2, NO_ASID, 0x20_0000, hit)).toBe(false);
    expect(tlb.lookup(1, 5, 0x20_0000, hit)).toBe(false);
    expect(tlb.stats).toMatchObject({ hits: 1, misses: 2, fills: 1 });
  });

  it('invalidates by tag, by asid and by range', () => {
    const tlb = new Iotlb();
    const hit = newTlbHit();
    for (let i = 0; i < 8; i++) tlb.fill(1, 7, i * 4096, 0x10_0000 + i * 4096, 4096, 3);
    tlb.fill(2, 7, 0, 0, 4096, 1);
    expect(tlb.invalidateRange(1, 7, 0x1800, 0x2000)).toBe(3); // pages 1, 2, 3
    expect(tlb.lookup(1, 7, 0x2000, hit)).toBe(false);
    expect(tlb.lookup(1, 7, 0x4000, hit)).toBe(true);
    expect(tlb.invalidateAsid(1, 7)).toBe(5);
    expect(tlb.invalidateTag(2)).toBe(1);
    expect(tlb.size).toBe(0);
  });

  it('keeps a stale entry until it is invalidated', () => {
    const tlb = new Iotlb();
    const hit = newTlbHit();
    tlb.fill(3, NO_ASID, 0x1000, 0xa000, 4096, 3);
    // The table changed underneath, but nothing told the cache.
    expect(tlb.lookup(3, NO_ASID, 0x1000, hit) && hit.pa).toBe(0xa000);
    tlb.invalidateAll();
    expect(tlb.lookup(3, NO_ASID, 0x1000, hit)).toBe(false);
  });

  it('evicts when a set overflows, never returning a wrong translation (model test)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            tag: fc.integer({ min: 0, max: 3 }),
            page: fc.integer({ min: 0, max: 2 ** 36 }),
            big: fc.boolean(),
          }),
          { maxLength: 200 },
        ),
        (fills) => {
          const tlb = new Iotlb({ sets: 4, ways: 2 });
          const truth = new Map<string, number>();
          for (const { tag, page, big } of fills) {
            const size = big ? 0x20_0000 : 4096;
            const iova = Math.floor((page * 4096) / size) * size;
            const pa = (page % 1000) * size;
            tlb.fill(tag, NO_ASID, iova, pa, size, 3);
            truth.set(`${tag}/${size}/${iova}`, pa);
          }
          const hit = newTlbHit();
          for (const e of tlb.entries()) {
            expect(truth.get(`${e.tag}/${e.pageSize}/${e.iova}`)).toBe(e.pa);
            expect(tlb.lookup(e.tag, NO_ASID, e.iova + 5, hit)).toBe(true);
          }
          expect(tlb.entries().length).toBeLessThanOrEqual(tlb.capacity);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('handles pages above 4 GiB and sizes of 4 GiB and more', () => {
    const tlb = new Iotlb();
    const hit = newTlbHit();
    tlb.fill(1, 2, 2 ** 45 + 0x1000, 2 ** 40, 4096, 1);
    tlb.fill(1, 2, 2 ** 39, 2 ** 39, 2 ** 39, 3);
    expect(tlb.lookup(1, 2, 2 ** 45 + 0x1fff, hit) && hit.pa).toBe(2 ** 40 + 0xfff);
    expect(tlb.lookup(1, 2, 2 ** 39 + 12345, hit) && hit.pa).toBe(2 ** 39 + 12345);
    expect(() => tlb.fill(1, 2, 0, 0, 3000, 1)).toThrow(RangeError);
    expect(() => new Iotlb({ sets: 3 })).toThrow(RangeError);
  });
});
