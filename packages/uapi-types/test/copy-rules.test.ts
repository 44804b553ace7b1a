// The kernel's copy rules for every ioctl, at the sizes that matter and
// against a plain reference model of each rule on random input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  copyIoctlArgIn,
  copyIoctlArgOut,
  copyStructFromUser,
  E2BIG,
  EFAULT,
  EINVAL,
  EOPNOTSUPP,
  type IoctlInfo,
  ioctls,
  type UserMemory,
  userMemoryOf,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_FLAG_TOKEN,
  VFIO_DEVICE_DETACH_PASID,
} from '../src/index.js';

const all = Object.values(ioctls) as IoctlInfo[];
const iommufdIoctls = all.filter((io) => io.copyRule === 'iommufd');

/** An argument of `length` bytes whose size field says `size`, with a pattern in the struct body. */
function argument(size: number, length = size): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 4; i < length; i++) bytes[i] = (i * 7 + 1) & 0xff;
  if (length >= 4) new DataView(bytes.buffer).setUint32(0, size >>> 0, true);
  return bytes;
}

function errnoOf(result: { ok: boolean; errno?: number }): number {
  return result.ok ? 0 : (result.errno as number);
}

describe('the iommufd rule, for every /dev/iommu command', () => {
  expect(iommufdIoctls).toHaveLength(22);

  describe.each(iommufdIoctls.map((io) => [io.name, io] as const))('%s', (_name, io) => {
    it('size min-1 is EINVAL and names the minimum', () => {
      const r = copyIoctlArgIn(io, argument(io.minSize - 1, io.size));
      expect(errnoOf(r)).toBe(EINVAL);
      if (!r.ok) expect(r.reason).toContain(`minimum ${io.minSize}`);
    });

    it('size min is accepted and the fields past it read as zero', () => {
      const arg = argument(io.minSize, io.size);
      const r = copyIoctlArgIn(io, arg);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.userSize).toBe(io.minSize);
      expect(r.bytes.length).toBe(io.size);
      expect(r.bytes.subarray(0, io.minSize)).toEqual(arg.subarray(0, io.minSize));
      expect(r.bytes.subarray(io.minSize).every((b) => b === 0)).toBe(true);
    });

    it('size sizeof copies the whole struct', () => {
      const arg = argument(io.size);
      const r = copyIoctlArgIn(io, arg);
      expect(r.ok && r.bytes).toEqual(arg);
    });

    it('size sizeof+8 with a zero tail is the same as sizeof', () => {
      const arg = argument(io.size + 8);
      arg.fill(0, io.size);
      const r = copyIoctlArgIn(io, arg);
      expect(r.ok && r.bytes).toEqual(arg.subarray(0, io.size));
    });

    it('size sizeof+8 with a non-zero byte anywhere in the tail is E2BIG', () => {
      for (let at = io.size; at < io.size + 8; at++) {
        const arg = argument(io.size + 8);
        arg.fill(0, io.size);
        arg[at] = 1;
        const r = copyIoctlArgIn(io, arg);
        expect(errnoOf(r), `non-zero byte ${at}`).toBe(E2BIG);
        if (!r.ok) expect(r.reason).toContain(`byte ${at}`);
      }
    });

    it('an argument shorter than its size, or with no readable size, is EFAULT', () => {
      expect(errnoOf(copyIoctlArgIn(io, argument(io.size, io.size - 1)))).toBe(EFAULT);
      expect(errnoOf(copyIoctlArgIn(io, argument(io.size + 8, io.size)))).toBe(EFAULT);
      expect(errnoOf(copyIoctlArgIn(io, new Uint8Array(3)))).toBe(EFAULT);
    });

    it('output goes back as min(size, sizeof) bytes and no more', () => {
      const kernel = Uint8Array.from({ length: io.size }, (_, i) => 0x80 | i);
      for (const size of [io.minSize, io.size, io.size + 8]) {
        const user = new Uint8Array(io.size + 8).fill(0x11);
        expect(copyIoctlArgOut(io, kernel, user, size).ok).toBe(true);
        const written = Math.min(size, io.size);
        expect(user.subarray(0, written)).toEqual(kernel.subarray(0, written));
        expect(user.subarray(written).every((b) => b === 0x11)).toBe(true);
      }
      expect(errnoOf(copyIoctlArgOut(io, kernel, new Uint8Array(io.minSize - 1), io.minSize))).toBe(
        EFAULT,
      );
    });
  });
});

/** The iommufd rule written the plain way, to compare against on random input. */
function referenceIommufd(
  io: IoctlInfo,
  buffer: Uint8Array,
): { errno: number; bytes?: Uint8Array } {
  if (buffer.length < 4) return { errno: EFAULT };
  const size = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0, true);
  if (size < io.minSize) return { errno: EINVAL };
  for (let i = io.size; i < size; i++) {
    if (i >= buffer.length) return { errno: EFAULT };
    if (buffer[i] !== 0) return { errno: E2BIG };
  }
  const n = Math.min(size, io.size);
  if (buffer.length < n) return { errno: EFAULT };
  const bytes = new Uint8Array(io.size);
  bytes.set(buffer.subarray(0, n));
  return { errno: 0, bytes };
}

describe('the iommufd rule against a reference model', () => {
  it('agrees on random sizes, tails and buffer lengths', () => {
    const input = fc
      .record({
        io: fc.constantFrom(...iommufdIoctls),
        sizeDelta: fc.integer({ min: -12, max: 24 }),
        lengthDelta: fc.integer({ min: -8, max: 8 }),
        tail: fc.uint8Array({ minLength: 32, maxLength: 32 }),
        tailZero: fc.boolean(),
      })
      .map(({ io, sizeDelta, lengthDelta, tail, tailZero }) => {
        const size = Math.max(0, io.size + sizeDelta);
        const buffer = argument(size, Math.max(0, size + lengthDelta));
        for (let i = io.size; i < buffer.length; i++)
          buffer[i] = tailZero ? 0 : (tail[i - io.size] as number);
        if (buffer.length >= 4) new DataView(buffer.buffer).setUint32(0, size, true);
        return { io, buffer };
      });
    fc.assert(
      fc.property(input, ({ io, buffer }) => {
        const expected = referenceIommufd(io, buffer);
        const actual = copyIoctlArgIn(io, buffer);
        expect(errnoOf(actual)).toBe(expected.errno);
        if (actual.ok) expect(actual.bytes).toEqual(expected.bytes);
        // The plain-buffer fast path and the UserMemory path answer the same.
        const viaMemory = copyIoctlArgIn(io, userMemoryOf(buffer));
        expect(errnoOf(viaMemory)).toBe(expected.errno);
        if (viaMemory.ok) expect(viaMemory.bytes).toEqual(expected.bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('copy_struct_from_user', () => {
  /** User memory that faults from byte `readable` on. */
  function faultingAt(bytes: Uint8Array, readable: number): UserMemory {
    return {
      read: (offset, length, into, at) => {
        if (offset + length > readable) return false;
        into.set(bytes.subarray(offset, offset + length), at);
        return true;
      },
      write: () => false,
    };
  }

  it('finds a non-zero byte before a fault (E2BIG) and a fault before any non-zero byte (EFAULT)', () => {
    const bytes = new Uint8Array(10000);
    const kernel = new Uint8Array(16);
    bytes[5000] = 1;
    expect(copyStructFromUser(kernel, 16, faultingAt(bytes, 6000), 10000)?.errno).toBe(E2BIG);
    expect(copyStructFromUser(kernel, 16, faultingAt(bytes, 4999), 10000)?.errno).toBe(EFAULT);
    bytes[5000] = 0;
    expect(copyStructFromUser(kernel, 16, faultingAt(bytes, 10000), 10000)).toBeUndefined();
  });

  it('checks a tail of megabytes of zeros', () => {
    const big = new Uint8Array(4 << 20);
    big.set([9, 9, 9, 9]);
    const kernel = new Uint8Array(8);
    expect(copyStructFromUser(kernel, 8, big, big.length)).toBeUndefined();
    expect([...kernel]).toEqual([9, 9, 9, 9, 0, 0, 0, 0]);
  });
});

describe('VFIO_DEVICE_BIND_IOMMUFD (6.17: kernel size 16)', () => {
  const io = ioctls.VFIO_DEVICE_BIND_IOMMUFD;
  const bind = (argsz: number, length: number, token = 0n, flags = 0) => {
    const b = new Uint8Array(length);
    const v = new DataView(b.buffer);
    v.setUint32(0, argsz, true);
    v.setUint32(4, flags, true);
    v.setInt32(8, 3, true);
    if (length >= 24) v.setBigUint64(16, token, true);
    return b;
  };

  it('argsz 15 is EINVAL, 16 is accepted', () => {
    expect(errnoOf(copyIoctlArgIn(io, bind(15, 16)))).toBe(EINVAL);
    const r = copyIoctlArgIn(io, bind(16, 16));
    expect(r.ok && r.userSize).toBe(16);
  });

  it('a non-zero byte past out_devid is E2BIG, even the token pointer with the TOKEN flag', () => {
    expect(errnoOf(copyIoctlArgIn(io, bind(24, 24, 0x1000n, VFIO_DEVICE_BIND_FLAG_TOKEN)))).toBe(
      E2BIG,
    );
    expect(errnoOf(copyIoctlArgIn(io, bind(24, 24, 0n, VFIO_DEVICE_BIND_FLAG_TOKEN)))).toBe(0);
    const padded = bind(32, 32);
    expect(errnoOf(copyIoctlArgIn(io, padded))).toBe(0);
    padded[31] = 1;
    expect(errnoOf(copyIoctlArgIn(io, padded))).toBe(E2BIG);
  });

  it('an unreadable argsz or tail is EFAULT', () => {
    expect(errnoOf(copyIoctlArgIn(io, new Uint8Array(2)))).toBe(EFAULT);
    expect(errnoOf(copyIoctlArgIn(io, bind(24, 20)))).toBe(EFAULT);
  });

  it('writes back only out_devid', () => {
    const kernel = Uint8Array.from({ length: 24 }, (_, i) => i + 1);
    const user = new Uint8Array(24);
    expect(copyIoctlArgOut(io, kernel, user, 24).ok).toBe(true);
    expect([...user]).toEqual([...new Array(12).fill(0), 13, 14, 15, 16, ...new Array(8).fill(0)]);
  });
});

describe.each([
  ['VFIO_DEVICE_ATTACH_IOMMUFD_PT', VFIO_DEVICE_ATTACH_PASID, 12, 16, 8],
  ['VFIO_DEVICE_DETACH_IOMMUFD_PT', VFIO_DEVICE_DETACH_PASID, 8, 12, 8],
] as const)('%s (reads only what it uses)', (name, pasidFlag, minsz, xend, pasidOffset) => {
  const io = ioctls[name];
  const arg = (argsz: number, flags: number, length: number) => {
    const b = new Uint8Array(Math.max(length, xend)).fill(0xee);
    const v = new DataView(b.buffer);
    v.setUint32(0, argsz, true);
    v.setUint32(4, flags, true);
    if (name === 'VFIO_DEVICE_ATTACH_IOMMUFD_PT') v.setUint32(8, 5, true);
    v.setUint32(pasidOffset, 77, true);
    return b.subarray(0, length);
  };

  it('argsz below the minimum is EINVAL', () => {
    expect(errnoOf(copyIoctlArgIn(io, arg(minsz - 1, 0, minsz)))).toBe(EINVAL);
  });

  it('ignores every byte past the fields it reads, even non-zero ones', () => {
    const r = copyIoctlArgIn(io, arg(64, 0, 64));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.bytes.subarray(minsz).every((b) => b === 0)).toBe(true);
  });

  it('reads the pasid only with the PASID flag, and then needs argsz for it', () => {
    expect(errnoOf(copyIoctlArgIn(io, arg(xend - 1, pasidFlag, xend)))).toBe(EINVAL);
    const r = copyIoctlArgIn(io, arg(xend, pasidFlag, xend));
    expect(r.ok && new DataView(r.bytes.buffer).getUint32(pasidOffset, true)).toBe(77);
    expect(errnoOf(copyIoctlArgIn(io, arg(xend, pasidFlag, xend - 1)))).toBe(EFAULT);
  });

  it('unknown flags are EINVAL; a PASID flag on a driver without PASID ops is EOPNOTSUPP', () => {
    expect(errnoOf(copyIoctlArgIn(io, arg(xend, 2, xend)))).toBe(EINVAL);
    expect(errnoOf(copyIoctlArgIn(io, arg(xend, pasidFlag, xend), { pasidSupported: false }))).toBe(
      EOPNOTSUPP,
    );
  });

  it('faults on the minimum fields before it looks at argsz', () => {
    expect(errnoOf(copyIoctlArgIn(io, arg(0, 0, minsz - 1)))).toBe(EFAULT);
  });

  it('writes back pt_id only (attach) or nothing (detach)', () => {
    const kernel = Uint8Array.from({ length: io.size }, (_, i) => i + 1);
    const user = new Uint8Array(io.size);
    expect(copyIoctlArgOut(io, kernel, user, io.size).ok).toBe(true);
    const expected = new Uint8Array(io.size);
    if (name === 'VFIO_DEVICE_ATTACH_IOMMUFD_PT') expected.set([9, 10, 11, 12], 8);
    expect(user).toEqual(expected);
  });
});
