import { describe, expect, it } from 'vitest';
import { capacityTable, RECORD_SIZES, RING_BYTES, ringCapacity } from '../src/index.js';

describe('ring capacity', () => {
  it('reproduces the 48 → 128-byte discussion: 4 KiB and 64 KiB rings', () => {
    expect([ringCapacity(4096, 48), ringCapacity(65536, 48)]).toEqual([85, 1365]);
    expect([ringCapacity(4096, 64), ringCapacity(65536, 64)]).toEqual([64, 1024]);
    expect([ringCapacity(4096, 128), ringCapacity(65536, 128)]).toEqual([32, 512]);
    // and its comparison: SMMU event queue (32-byte entries), PRI queue (16-byte)
    expect([ringCapacity(4096, 32), ringCapacity(65536, 32)]).toEqual([128, 2048]);
    expect([ringCapacity(4096, 16), ringCapacity(65536, 16)]).toEqual([256, 4096]);
  });

  it('the table covers the 40-byte record of the 6.17 fault fd too', () => {
    expect(RECORD_SIZES).toEqual([40, 48, 64, 128]);
    expect(RING_BYTES).toEqual([4096, 65536]);
    expect(capacityTable()).toEqual([
      { recordSize: 40, records: [102, 1638] },
      { recordSize: 48, records: [85, 1365] },
      { recordSize: 64, records: [64, 1024] },
      { recordSize: 128, records: [32, 512] },
    ]);
  });

  it('never counts a partial record, and refuses nonsense', () => {
    expect(ringCapacity(47, 48)).toBe(0);
    expect(ringCapacity(0, 40)).toBe(0);
    expect(() => ringCapacity(4096, 0)).toThrow(RangeError);
    expect(() => ringCapacity(-1, 40)).toThrow(RangeError);
    expect(() => ringCapacity(4096, 1.5)).toThrow(RangeError);
  });
});
