import { describe, expect, it } from 'vitest';
import { bdfToRid, Device, parseBdf } from '../src/index.js';

describe('Device', () => {
  it('takes a PCI RID from its BDF and uses it as the stream id', () => {
    const d = new Device({ name: '0000:01:00.0', pasidBits: 20, ats: true, pri: true });
    expect(d).toMatchObject({ isPci: true, rid: 0x100, streamIds: [0x100], pasidBits: 20 });
    expect(bdfToRid(parseBdf('3a:1f.7') as never)).toBe(0x3aff);
    expect(parseBdf('00:20.0')).toBeUndefined();
    expect(parseBdf('dma-engine')).toBeUndefined();
  });

  it('models platform devices with several stream ids that can stall', () => {
    const d = new Device({ name: 'dma-engine', streamIds: [0x100, 0x101], stall: true });
    expect(d).toMatchObject({ isPci: false, rid: -1, streamIds: [0x100, 0x101], stall: true });
  });

  it('refuses capabilities the bus does not have', () => {
    expect(() => new Device({ name: 'dma', ats: true })).toThrow(/PCI/);
    expect(() => new Device({ name: '00:01.0', stall: true })).toThrow(/platform/);
    expect(() => new Device({ name: '00:01.0', pasidBits: 21 })).toThrow(RangeError);
    expect(() => new Device({ name: 'x', rid: 0x10000 })).toThrow(RangeError);
  });
});
