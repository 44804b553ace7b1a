/**
 * Pinned-page accounting, as iommufd charges it (pages.c, iopt_pages_update_pinned):
 *
 * - mode NONE: the mapping process had CAP_IPC_LOCK; nothing is charged
 *   against a limit;
 * - mode USER (the default): the pages count against the user's locked_vm,
 *   checked against RLIMIT_MEMLOCK (io_uring style), whatever the capabilities;
 * - mode MM (IOMMU_OPTION_RLIMIT_MODE = 1, VFIO style): the pages count against
 *   the process's locked_vm (VmLck), checked unless it has CAP_IPC_LOCK.
 *
 * In every mode the process's pinned_vm (VmPin) grows by the pages pinned.
 */
import { ENOMEM } from '@iommufd-sim/uapi-types';

/** How a pages object is charged. */
export type AccountMode = 'none' | 'user' | 'mm';

/** A user's locked_vm, shared by all of its processes. */
export class UserAccount {
  /** Pages charged to the user right now. */
  lockedPages = 0;
  constructor(
    /** The user id. */
    readonly uid: number,
  ) {}
}

/** The memory counters of one process (its mm). */
export class MmAccount {
  /** VmLck, in pages. */
  lockedPages = 0;
  /** VmPin, in pages. */
  pinnedPages = 0;
  constructor(
    /** RLIMIT_MEMLOCK in pages. */
    readonly limitPages: number,
    /** CAP_IPC_LOCK: locked_vm is not checked against the limit. */
    readonly ipcLock: boolean,
  ) {}
}

/** Who a pages object charges. */
export interface ChargeTarget {
  mode: AccountMode;
  user: UserAccount;
  mm: MmAccount;
}

/**
 * Charge (`delta` > 0) or uncharge (`delta` < 0) pinned pages. `limitPages`
 * is RLIMIT_MEMLOCK of the task doing the pinning. Returns 0 or -ENOMEM, in
 * which case nothing changed.
 */
export function chargePinned(target: ChargeTarget, delta: number, limitPages: number): number {
  if (delta > 0) {
    if (target.mode === 'user' && target.user.lockedPages + delta > limitPages) return -ENOMEM;
    if (
      target.mode === 'mm' &&
      !target.mm.ipcLock &&
      target.mm.lockedPages + delta > target.mm.limitPages
    ) {
      return -ENOMEM;
    }
  }
  if (target.mode === 'user') target.user.lockedPages += delta;
  else if (target.mode === 'mm') target.mm.lockedPages += delta;
  target.mm.pinnedPages += delta;
  return 0;
}
