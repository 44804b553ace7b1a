/**
 * HwQueueSlots: the index rules of IOMMU_HW_QUEUE_ALLOC the 6.17 drivers
 * share (catalog 198; tegra241_vintf_alloc_lvcmdq_user and
 * mock_hw_queue_init_phys): at or past the maximum EINVAL, taken EEXIST,
 * previous index free EIO, checked in that order; index i > 0 depends on
 * i - 1.
 */
import { EEXIST, EINVAL, EIO } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HwQueueSlots } from '../src/index.js';

describe('HwQueueSlots', () => {
  it('index 0 first, then 1 depending on 0; the maximum is EINVAL', () => {
    const s = new HwQueueSlots<string>(2);
    expect(s.check(0)).toEqual({ prev: undefined });
    s.take(0, 'q0');
    expect(s.check(1)).toEqual({ prev: 'q0' });
    s.take(1, 'q1');
    expect(s.used).toBe(2);
    expect(s.at(0)).toBe('q0');
    expect(s.at(1)).toBe('q1');
    const past = s.check(2);
    expect(past).toMatchObject({ errno: EINVAL });
    expect('reason' in past ? past.reason : '').toContain('2');
  });

  it('index 1 before index 0 is EIO; a taken index is EEXIST', () => {
    const s = new HwQueueSlots<string>(4);
    const early = s.check(1);
    expect(early).toMatchObject({ errno: EIO });
    expect('reason' in early ? early.reason : '').toMatch(/index 0 .*before index 1/);
    s.take(0, 'q0');
    expect(s.check(0)).toMatchObject({ errno: EEXIST });
    expect(s.check(2)).toMatchObject({ errno: EIO });
  });

  it('the kernel order: EINVAL before EEXIST before EIO', () => {
    const s = new HwQueueSlots<string>(2);
    s.take(0, 'q0');
    s.take(1, 'q1');
    s.release(0);
    // Index 1 is taken and index 0 is free: EEXIST wins over EIO.
    expect(s.check(1)).toMatchObject({ errno: EEXIST });
    expect(s.check(5)).toMatchObject({ errno: EINVAL });
  });

  it('indexes that are not whole numbers in range are EINVAL', () => {
    const s = new HwQueueSlots<string>(2);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 32, Number.POSITIVE_INFINITY]) {
      expect(s.check(bad), String(bad)).toMatchObject({ errno: EINVAL });
    }
  });

  it('release frees an index for reuse; releasing out of range is ignored', () => {
    const s = new HwQueueSlots<string>(2);
    s.take(0, 'a');
    s.release(0);
    s.release(-1);
    s.release(7);
    expect(s.used).toBe(0);
    expect(s.at(0)).toBeUndefined();
    expect(s.check(0)).toEqual({ prev: undefined });
  });

  it('a maximum of 0 takes no index at all', () => {
    expect(new HwQueueSlots<string>(0).check(0)).toMatchObject({ errno: EINVAL });
  });

  it('agrees with a plain array model under random take / release sequences', () => {
    const op = fc.record({
      take: fc.boolean(),
      index: fc.integer({ min: -1, max: 5 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 40 }), (max, ops) => {
        const s = new HwQueueSlots<number>(max);
        const model: (number | undefined)[] = new Array(max).fill(undefined);
        for (const { take, index } of ops) {
          if (!take) {
            s.release(index);
            if (index >= 0 && index < max) model[index] = undefined;
            continue;
          }
          const got = s.check(index);
          const want =
            index < 0 || index >= max
              ? EINVAL
              : model[index] !== undefined
                ? EEXIST
                : index > 0 && model[index - 1] === undefined
                  ? EIO
                  : 0;
          expect('errno' in got ? got.errno : 0).toBe(want);
          if (want === 0) {
            expect(got).toEqual({ prev: index > 0 ? model[index - 1] : undefined });
            s.take(index, index * 10);
            model[index] = index * 10;
          }
          expect(s.used).toBe(model.filter((q) => q !== undefined).length);
        }
      }),
    );
  });
});
