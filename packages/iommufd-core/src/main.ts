/**
 * The ioctls main.c answers itself: IOMMU_DESTROY (any object type, only
 * when nothing else holds it) and IOMMU_OPTION (RLIMIT_MODE on the context,
 * HUGE_PAGES on an IOAS).
 */
import {
  EBUSY,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  EPERM,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
} from '@iommufd-sim/uapi-types';
import type { Ucmd } from './dispatch.js';
import { getIoas, offsets } from './ioas.js';

const DESTROY = offsets('iommu_destroy');

/** IOMMU_DESTROY */
export function destroyIoctl(ucmd: Ucmd): number {
  const id = ucmd.u32(DESTROY.id as number);
  const objects = ucmd.ctx.objects;
  const obj = objects.peek(id);
  const rc = objects.destroyUser(id);
  if (rc === 'ok') return 0;
  if (rc === 'missing') {
    return ucmd.fail(
      ENOENT,
      obj === undefined
        ? `there is no object ${id}`
        : `object ${id} is ${obj.state === 'tombstone' ? 'a tombstone' : 'not fully created'}`,
    );
  }
  const holders = (obj?.users ?? 1) - 1;
  return ucmd.fail(
    EBUSY,
    obj?.type === 'DEVICE'
      ? `object ${id} is a device held by its binding; close the VFIO fd (or destroy the selftest object) instead`
      : `${obj?.describe() ?? id} is still used by ${holders} other object${holders === 1 ? '' : 's'} or attachment${holders === 1 ? '' : 's'}`,
  );
}

const OPTION = offsets('iommu_option');

/** IOMMU_OPTION */
export function optionIoctl(ucmd: Ucmd): number {
  // op and __reserved are u16s (struct iommu_option), next to the u32 object_id.
  if (ucmd.view.getUint16(OPTION.__reserved as number, true) !== 0)
    return ucmd.fail(EOPNOTSUPP, '__reserved must be 0');
  const optionId = ucmd.u32(OPTION.option_id as number);
  const op = ucmd.view.getUint16(OPTION.op as number, true);
  const objectId = ucmd.u32(OPTION.object_id as number);
  const val = ucmd.u64(OPTION.val64 as number);
  let rc: number;
  if (optionId === IOMMU_OPTION_RLIMIT_MODE) rc = rlimitMode(ucmd, op, objectId, val);
  else if (optionId === IOMMU_OPTION_HUGE_PAGES) rc = hugePages(ucmd, op, objectId, val);
  else return ucmd.fail(EOPNOTSUPP, `unknown option_id ${optionId}`);
  if (rc !== 0) return rc;
  return ucmd.respond();
}

function rlimitMode(ucmd: Ucmd, op: number, objectId: number, val: bigint): number {
  if (objectId !== 0) return ucmd.fail(EOPNOTSUPP, 'RLIMIT_MODE is global: object_id must be 0');
  const ctx = ucmd.ctx;
  if (op === IOMMU_OPTION_OP_GET) {
    ucmd.setU64(OPTION.val64 as number, ctx.accountMode === 'mm' ? 1n : 0n);
    return 0;
  }
  if (op !== IOMMU_OPTION_OP_SET) return ucmd.fail(EOPNOTSUPP, `unknown op ${op}`);
  if (!ucmd.proc.privileged) return ucmd.fail(EPERM, 'setting RLIMIT_MODE needs CAP_SYS_RESOURCE');
  if (ctx.objects.size > 0) {
    return ucmd.fail(
      EBUSY,
      `RLIMIT_MODE can change only while no object exists (${ctx.objects.size} do)`,
    );
  }
  if (val === 0n) ctx.accountMode = 'user';
  else if (val === 1n) ctx.accountMode = 'mm';
  else return ucmd.fail(EINVAL, `RLIMIT_MODE takes 0 (per user) or 1 (per process), not ${val}`);
  return 0;
}

function hugePages(ucmd: Ucmd, op: number, objectId: number, val: bigint): number {
  const ioas = getIoas(ucmd.ctx, objectId);
  if (ioas === undefined)
    return ucmd.fail(ENOENT, `HUGE_PAGES needs an IOAS id; ${objectId} is not one`);
  if (op === IOMMU_OPTION_OP_GET) {
    ucmd.setU64(OPTION.val64 as number, ioas.iopt.disableLargePages ? 0n : 1n);
    return 0;
  }
  if (op !== IOMMU_OPTION_OP_SET) return ucmd.fail(EOPNOTSUPP, `unknown op ${op}`);
  if (val === 0n) {
    const bad = ioas.iopt.disableLarge();
    return bad === undefined ? 0 : ucmd.fail(bad.errno, bad.reason);
  }
  if (val === 1n) {
    ioas.iopt.enableLarge();
    return 0;
  }
  return ucmd.fail(EINVAL, `HUGE_PAGES takes 0 or 1, not ${val}`);
}
