import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_SIZE, FrameAllocator, PhysicalMemory, toAddress } from '../src/index.js';

describe('PhysicalMemory', () => {
  it('reads zeros from untouched memory without allocating', () => {
    const mem = new PhysicalMemory();
    expect(mem.read(0x1234_5678_9000, 16)).toEqual(new Uint8Array(16));
    expect(mem.readU64(2 ** 40)).toBe(0n);
    expect(mem.framesTouched).toBe(0);
  });

  it('a 1 TiB address space costs only the frames written', () => {
    const mem = new PhysicalMemory({ addressBits: 40 });
    for (let i = 0; i < 256; i++) mem.writeU32(i * 2 ** 32 + 4, i + 1);
    expect(mem.framesTouched).toBe(256);
    expect(mem.bytesTouched).toBe(256 * FRAME_SIZE);
    expect(mem.readU32(255 * 2 ** 32 + 4)).toBe(256);
  });

  it('reads and writes byte ranges that cross frames', () => {
    const mem = new PhysicalMemory();
    const bytes = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff);
    mem.write(0x10000 - 3, bytes);
    expect(Buffer.from(mem.read(0x10000 - 3, bytes.length)).equals(bytes)).toBe(true);
    expect(mem.framesTouched).toBe(4);
    const into = new Uint8Array(20);
    mem.read(0x10000 - 3, 10, into, 5);
    expect([...into.subarray(5, 15)]).toEqual([...bytes.subarray(0, 10)]);
  });

  it('agrees with a byte map over random writes (model test)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 5 * FRAME_SIZE }),
            data: fc.uint8Array({ minLength: 1, maxLength: 3 * FRAME_SIZE }),
          }),
          { maxLength: 12 },
        ),
        (writes) => {
          const mem = new PhysicalMemory({ addressBits: 32 });
          const model = new Uint8Array(9 * FRAME_SIZE);
          for (const { at, data } of writes) {
            mem.write(at, data);
            model.set(data, at);
          }
          // Buffer comparison: a deep equal of 36 KiB element by element is slow.
          expect(Buffer.from(mem.read(0, model.length)).equals(model)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('64-bit words are little endian and accept bigint addresses', () => {
    const mem = new PhysicalMemory();
    mem.writeU64(0x1000n, 0x0123_4567_89ab_cdefn);
    expect(mem.readU32(0x1000)).toBe(0x89ab_cdef);
    expect(mem.readU32(0x1004)).toBe(0x0123_4567);
    expect([...mem.read(0x1000, 2)]).toEqual([0xef, 0xcd]);
    expect(mem.readU64(0x1000)).toBe(0x0123_4567_89ab_cdefn);
  });

  it('fill with zero releases whole frames', () => {
    const mem = new PhysicalMemory();
    mem.fill(0, 3 * FRAME_SIZE, 0xaa);
    expect(mem.framesTouched).toBe(3);
    mem.fill(100, 2 * FRAME_SIZE, 0);
    expect(mem.framesTouched).toBe(2); // the middle frame was wholly zeroed
    expect(mem.read(99, 2)).toEqual(Uint8Array.of(0xaa, 0));
  });

  it('rejects addresses outside the physical width and misaligned words', () => {
    const mem = new PhysicalMemory({ addressBits: 32 });
    expect(() => mem.write(2 ** 32 - 1, new Uint8Array(2))).toThrow(RangeError);
    expect(() => mem.readU64(4)).toThrow(/aligned/);
    expect(() => toAddress(-1)).toThrow(RangeError);
    expect(() => toAddress(2n ** 60n)).toThrow(RangeError);
    expect(() => new PhysicalMemory({ addressBits: 60 })).toThrow(RangeError);
  });
});

describe('FrameAllocator', () => {
  it('hands out zeroed, aligned blocks and counts them', () => {
    const mem = new PhysicalMemory();
    const alloc = new FrameAllocator(mem, { base: 0x100000, size: 0x100000 });
    const a = alloc.allocate();
    mem.writeU32(a, 0xffffffff);
    const big = alloc.allocate(64 * 1024);
    expect(big % (64 * 1024)).toBe(0);
    expect(alloc.framesInUse).toBe(17);
    alloc.free(a);
    const again = alloc.allocate();
    expect(again).toBe(a); // reused
    expect(mem.readU32(again)).toBe(0); // and zeroed
    expect(alloc.peakFramesInUse).toBe(17);
  });

  it('a multi-frame block is one array to its owner and frames to everyone else', () => {
    const mem = new PhysicalMemory();
    const alloc = new FrameAllocator(mem, { base: 0x100000, size: 0x100000 });
    const pa = alloc.allocate(16 * 1024);
    const words = alloc.blockWords(pa, 16 * 1024);
    words[1024 * 3 + 2] = 0x1234;
    expect(mem.readU32(pa + 3 * FRAME_SIZE + 8)).toBe(0x1234);
    expect(alloc.readFrame(pa / FRAME_SIZE + 3)?.[2]).toBe(0x1234);
  });

  it('returns -1 when the region is exhausted', () => {
    const alloc = new FrameAllocator(new PhysicalMemory(), {
      base: 0x100000,
      size: 2 * FRAME_SIZE,
    });
    expect(alloc.allocate()).toBeGreaterThan(0);
    expect(alloc.allocate()).toBeGreaterThan(0);
    expect(alloc.allocate()).toBe(-1);
    expect(alloc.allocate(8192)).toBe(-1);
  });

  it('rejects bad sizes and frees of what it did not allocate', () => {
    const alloc = new FrameAllocator(new PhysicalMemory(), { base: 0x100000, size: 0x100000 });
    expect(() => alloc.allocate(3000)).toThrow(RangeError);
    expect(() => alloc.allocate(12288)).toThrow(RangeError);
    expect(() => alloc.free(0x100000)).toThrow(RangeError);
    expect(
      () => new FrameAllocator(new PhysicalMemory({ addressBits: 32 }), { base: 2 ** 32 }),
    ).toThrow(RangeError);
  });

  it('reads frames it does not own through physical memory', () => {
    const mem = new PhysicalMemory();
    const alloc = new FrameAllocator(mem, { base: 0x100000, size: 0x100000 });
    mem.writeU32(0x5000, 7);
    expect(alloc.readFrame(5)?.[0]).toBe(7);
    alloc.writeFrame(6)?.fill(1);
    expect(mem.readU32(0x6000)).toBe(1);
  });
});

describe('memory and the allocator stay one', () => {
  it('zeroing a table page through memory zeroes what walkers read', () => {
    const mem = new PhysicalMemory();
    const alloc = new FrameAllocator(mem, { base: 0x100000, size: 0x100000 });
    const pa = alloc.allocate();
    const words = alloc.blockWords(pa);
    words[0] = 0x1003;
    mem.fill(pa, FRAME_SIZE, 0);
    expect(words[0]).toBe(0);
    mem.writeU32(pa, 7);
    expect(words[0]).toBe(7);
  });
});

describe('PhysicalMemory.fill over a range wider than the touched memory', () => {
  it('zeroes exactly the touched bytes inside the range and keeps the rest', () => {
    const m = new PhysicalMemory();
    const base = 2 ** 40;
    m.write(base + 100, new Uint8Array([1, 2, 3])); // inside, partial frame
    m.write(base + 5 * 4096, new Uint8Array(4096).fill(7)); // inside, whole frame
    m.write(base - 2, new Uint8Array([9, 9, 9, 9])); // straddles the start
    m.write(base + 2 ** 36, new Uint8Array([5])); // just past the end
    m.fill(base, 2 ** 36, 0);
    expect([...m.read(base + 100, 3)]).toEqual([0, 0, 0]);
    expect(m.read(base + 5 * 4096, 4096).every((b) => b === 0)).toBe(true);
    expect([...m.read(base - 2, 4)]).toEqual([9, 9, 0, 0]);
    expect([...m.read(base + 2 ** 36, 1)]).toEqual([5]);
    expect(m.framesTouched).toBe(2);
  });
});
