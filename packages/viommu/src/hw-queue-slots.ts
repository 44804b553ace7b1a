/**
 * The HW queue index rules the 6.17 drivers share (the selftest's
 * mock_hw_queue_init_phys, Tegra241's tegra241_vintf_alloc_lvcmdq_user):
 * indexes of one vIOMMU are taken in rising order from 0 and below a
 * maximum; queue i > 0 depends on queue i - 1, which therefore cannot be
 * destroyed first (the core's EBUSY, through the dependency's reference).
 */
import { EEXIST, EINVAL, EIO } from '@iommufd-sim/uapi-types';

/** Why an index was refused: the errno and the reason. */
export interface SlotRefusal {
  readonly errno: number;
  readonly reason: string;
}

/** The queues of one vIOMMU, by index. */
export class HwQueueSlots<Q> {
  private readonly slots: (Q | undefined)[];

  constructor(
    /** How many indexes exist (IOMMU_TEST_HW_QUEUE_MAX, or the LVCMDQs per VINTF). */
    readonly max: number,
  ) {
    this.slots = new Array<Q | undefined>(max).fill(undefined);
  }

  /**
   * Whether `index` may be taken now: EINVAL at or past the maximum, EEXIST
   * when taken, EIO when the previous index is free. Returns the queue it
   * will depend on (undefined for index 0), or the refusal.
   */
  check(index: number): { readonly prev: Q | undefined } | SlotRefusal {
    if (!(Number.isInteger(index) && index >= 0 && index < this.max)) {
      return {
        errno: EINVAL,
        reason: `index ${index} is not below the ${this.max} queues this vIOMMU has`,
      };
    }
    if (this.slots[index] !== undefined) {
      return { errno: EEXIST, reason: `queue index ${index} is already allocated` };
    }
    if (index > 0) {
      const prev = this.slots[index - 1];
      if (prev === undefined) {
        return {
          errno: EIO,
          reason: `queue index ${index - 1} must be allocated before index ${index} (rising order)`,
        };
      }
      return { prev };
    }
    return { prev: undefined };
  }

  /** Record `queue` at `index` (after {@link check}). */
  take(index: number, queue: Q): void {
    this.slots[index] = queue;
  }

  /** Free `index`. */
  release(index: number): void {
    if (index >= 0 && index < this.max) this.slots[index] = undefined;
  }

  /** The queue at `index`, if any. */
  at(index: number): Q | undefined {
    return this.slots[index];
  }

  /** How many indexes are taken. */
  get used(): number {
    return this.slots.filter((q) => q !== undefined).length;
  }
}
