/**
 * Steps that are iommufd ioctls: the generic `ioctl`, and the named ones a
 * VMM makes (IOAS, maps, HWPTs, dirty tracking, the vIOMMU objects).
 */
import {
  IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  type StructName,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Step } from '../scenario/types.js';
import { fieldEnum, formatEnumValue } from '../uapi/field-enums.js';
import { decodeStruct, formatChanged, formatStruct } from '../uapi/struct-text.js';
import { hex } from '../util/hex.js';
import { formatSize } from '../util/units.js';
import { type IoctlResult, type RunContext, StepFailure } from './context.js';
import type { StepOutcome } from './outcome.js';

const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const U64_MAX = (1n << 64n) - 1n;

function outcome(r: IoctlResult, summary: string, details?: string[]): StepOutcome {
  return {
    main: { call: r.call, ret: r.ret },
    output: r.out,
    summary: r.ret >= 0 ? summary : '',
    ...(details === undefined ? {} : { details }),
  };
}

/** `ioctl`: any request, struct fields by name. */
export function ioctlStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const info = step.request;
  if (info === undefined) throw new StepFailure('no request', step.loc);
  const fd = ctx.num(step, 'on') ?? ctx.iommufd(ps, step, 'on');
  if (info.struct === undefined) {
    const ret = ps.traced.ioctl(fd, info.request, ctx.big(step, 'arg') ?? 0n);
    return { main: { call: info.name, ret }, summary: ret >= 0 ? `returned ${ret}` : '' };
  }
  const value = ctx.structValue(info.struct, step.args ?? new Map(), ps);
  const r = ctx.ioctl(ps, fd, info.name, value);
  const changed = formatChanged(info.struct, r.sent, r.out);
  return outcome(r, changed === '' ? `returned ${r.ret}` : `=> ${changed}`);
}

/** `ioas`. */
export function ioasStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_IOAS_ALLOC', {});
  const name = ctx.text(step, 'ioas') ?? '';
  if (r.ret >= 0) ctx.set(name, Number(r.out.out_ioas_id));
  return outcome(r, `$${name} = IOAS ${String(r.out.out_ioas_id)}`);
}

function mapIoctl(
  step: Step,
  ctx: RunContext,
  ioas: bigint,
  va: bigint,
  length: bigint,
  iova: bigint | undefined,
  prot: number,
): IoctlResult {
  const ps = ctx.proc(step);
  return ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_IOAS_MAP', {
    flags: prot | (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA),
    ioas_id: Number(ioas),
    user_va: va,
    length,
    iova: iova ?? 0n,
  });
}

/** `map`. */
export function mapStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const ioas = ctx.needBig(step, 'map');
  let va = ctx.big(step, 'buffer');
  let length = ctx.big(step, 'length') ?? (va === undefined ? undefined : ps.buffers.get(va));
  if (length === undefined) {
    throw new StepFailure(
      va === undefined
        ? "map needs 'buffer' or 'length'"
        : `no buffer a step mapped starts at ${hex(va)}: give 'length'`,
      step.loc,
    );
  }
  if (va === undefined) va = ctx.mmap(ps, length, 'the mapping');
  length = BigInt(length);
  const iova = ctx.big(step, 'iova');
  const r = mapIoctl(
    step,
    ctx,
    ioas,
    va,
    length,
    iova,
    Number(ctx.big(step, 'prot') ?? BigInt(RW)),
  );
  const as = ctx.text(step, 'as');
  if (r.ret >= 0 && as !== undefined) ctx.set(as, r.out.iova as bigint);
  return outcome(r, `${formatSize(length)} at IOVA ${hex(r.out.iova as bigint)} (user ${hex(va)})`);
}

/** `map-guest-ram`. */
export function mapGuestRamStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const ioas = ctx.needBig(step, 'map-guest-ram');
  const size = ctx.needBig(step, 'size');
  const gpa = ctx.big(step, 'gpa') ?? 0n;
  const name = ctx.text(step, 'as') ?? 'ram';
  const va = ctx.mmap(ps, size, 'guest RAM');
  ctx.set(name, va);
  const r = mapIoctl(step, ctx, ioas, va, size, gpa, RW);
  return outcome(
    r,
    `${formatSize(size)} of guest RAM at GPA = IOVA ${hex(gpa)}, user ${hex(va)} ($${name})`,
  );
}

/** `unmap`. */
export function unmapStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const all = ctx.bool(step, 'all', false);
  const iova = all ? 0n : ctx.big(step, 'iova');
  const length = all ? U64_MAX : ctx.big(step, 'length');
  if (iova === undefined || length === undefined) {
    throw new StepFailure("unmap needs 'iova' and 'length', or 'all: true'", step.loc);
  }
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_IOAS_UNMAP', {
    ioas_id: Number(ctx.needBig(step, 'unmap')),
    iova,
    length,
  });
  return outcome(r, `${formatSize(r.out.length as bigint)} unmapped`);
}

const HWPT_DATA_TYPES: Partial<Record<StructName, number>> = {
  iommu_hwpt_vtd_s1: IOMMU_HWPT_DATA_VTD_S1,
  iommu_hwpt_arm_smmuv3: IOMMU_HWPT_DATA_ARM_SMMUV3,
  iommu_hwpt_selftest: IOMMU_HWPT_DATA_SELFTEST,
};

/** `hwpt`. */
export function hwptStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'hwpt') ?? '';
  let flags = Number(ctx.big(step, 'flags') ?? 0n);
  const fault = ctx.num(step, 'fault');
  if (fault !== undefined) flags |= IOMMU_HWPT_FAULT_ID_VALID;
  const value: Record<string, unknown> = {
    flags,
    dev_id: ctx.devid(ps, step, 'device'),
    pt_id: ctx.needNum(step, 'pt'),
    fault_id: fault ?? 0,
  };
  const data = ctx.value(step, 'data');
  if (data?.t === 'struct') {
    const placed = ctx.placeUserStruct(ps, data.data);
    value.data_type = HWPT_DATA_TYPES[data.data.struct] ?? 0;
    value.data_len = placed.length;
    value.data_uptr = placed.va;
  }
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_HWPT_ALLOC', value);
  if (r.ret >= 0) ctx.set(name, Number(r.out.out_hwpt_id));
  const info = fieldEnum('iommu_hwpt_alloc', 'flags');
  const flagText = info === undefined || flags === 0 ? '' : ` (${formatEnumValue(info, flags)})`;
  return outcome(r, `$${name} = HWPT ${String(r.out.out_hwpt_id)}${flagText}`);
}

/** `destroy`. */
export function destroyStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const id = ctx.needNum(step, 'destroy');
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_DESTROY', { id });
  return outcome(r, `object ${id} destroyed`);
}

/** `fault-queue`. */
export function faultQueueStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'fault-queue') ?? '';
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_FAULT_QUEUE_ALLOC', {});
  return objectWithFd(ctx, r, name, 'FAULT', r.out.out_fault_id, r.out.out_fault_fd);
}

/** An object that comes with an fd: `$name` is its id, `$name.fd` its fd. */
function objectWithFd(
  ctx: RunContext,
  r: IoctlResult,
  name: string,
  what: string,
  id: unknown,
  fd: unknown,
): StepOutcome {
  if (r.ret >= 0) {
    ctx.set(name, Number(id));
    ctx.set(`${name}.fd`, Number(fd));
  }
  return outcome(r, `$${name} = ${what} ${String(id)}, $${name}.fd = fd ${String(fd)}`);
}

const HW_INFO_STRUCTS: Readonly<Record<number, StructName>> = {
  [IOMMU_HW_INFO_TYPE_INTEL_VTD]: 'iommu_hw_info_vtd',
  [IOMMU_HW_INFO_TYPE_ARM_SMMUV3]: 'iommu_hw_info_arm_smmuv3',
  [IOMMU_HW_INFO_TYPE_SELFTEST]: 'iommu_test_hw_info',
};

/** `hw-info`. */
export function hwInfoStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const buffer = ctx.mmap(ps, 4096n, 'hw_info data');
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_GET_HW_INFO', {
    dev_id: ctx.devid(ps, step, 'hw-info'),
    data_len: 256,
    data_uptr: buffer,
  });
  if (r.ret < 0) return outcome(r, '');
  const type = Number(r.out.out_data_type);
  const details: string[] = [];
  const struct = HW_INFO_STRUCTS[type];
  const len = Number(r.out.data_len);
  if (struct !== undefined && len > 0) {
    const bytes = ps.traced.readMemory(buffer, len);
    if (bytes !== null)
      details.push(`${struct} ${formatStruct(struct, decodeStruct(struct, bytes))}`);
  }
  const typeInfo = fieldEnum('iommu_hw_info', 'out_data_type');
  const capInfo = fieldEnum('iommu_hw_info', 'out_capabilities');
  const typeName = typeInfo === undefined ? String(type) : formatEnumValue(typeInfo, type);
  const caps =
    capInfo === undefined ? '' : formatEnumValue(capInfo, r.out.out_capabilities as bigint);
  return outcome(
    r,
    `${typeName}, capabilities ${caps}, max PASID bits ${String(r.out.out_max_pasid_log2)}`,
    details,
  );
}

/** `dirty-tracking`. */
export function dirtyTrackingStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const enable = ctx.bool(step, 'enable', true);
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_HWPT_SET_DIRTY_TRACKING', {
    flags: enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
    hwpt_id: ctx.needNum(step, 'dirty-tracking'),
  });
  return outcome(r, `dirty tracking ${enable ? 'on' : 'off'}`);
}

/** Runs of set bits as [first, last] bit indexes (zero bytes skipped whole: bitmaps are sparse). */
function setRuns(bitmap: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  const close = (at: number) => {
    if (start >= 0) runs.push([start, at - 1]);
    start = -1;
  };
  for (let byte = 0; byte < bitmap.length; byte++) {
    const v = bitmap[byte] as number;
    if (v === 0 || v === 0xff) {
      if (v === 0) close(byte * 8);
      else if (start < 0) start = byte * 8;
      continue;
    }
    for (let bit = 0; bit < 8; bit++) {
      const i = byte * 8 + bit;
      if ((v & (1 << bit)) !== 0) {
        if (start < 0) start = i;
      } else close(i);
    }
  }
  close(bitmap.length * 8);
  return runs;
}

/** `dirty-bitmap`. */
export function dirtyBitmapStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const iova = ctx.needBig(step, 'iova');
  const length = ctx.needBig(step, 'length');
  const pageSize = ctx.big(step, 'page-size') ?? 4096n;
  if (pageSize <= 0n) throw new StepFailure('page-size must be positive', step.loc);
  const bits = length / pageSize;
  const bytes = ((bits + 63n) / 64n) * 8n;
  const bitmap = ctx.mmap(ps, ((bytes + 4095n) / 4096n) * 4096n, 'the dirty bitmap');
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_HWPT_GET_DIRTY_BITMAP', {
    hwpt_id: ctx.needNum(step, 'dirty-bitmap'),
    flags: ctx.bool(step, 'no-clear', false) ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0,
    iova,
    length,
    page_size: pageSize,
    data: bitmap,
  });
  if (r.ret < 0) return outcome(r, '');
  const read = ps.traced.readMemory(bitmap, Number(bytes));
  if (read === null) throw ctx.callFailure(ps, 'reading the bitmap', -14);
  const runs = setRuns(read);
  const count = runs.reduce((n, [a, b]) => n + (b - a + 1), 0);
  const ranges = runs.map(
    ([a, b]) => `${hex(iova + BigInt(a) * pageSize)}-${hex(iova + BigInt(b + 1) * pageSize - 1n)}`,
  );
  const problems: string[] = [];
  const wantCount = ctx.big(step, 'expect-count');
  if (wantCount !== undefined && BigInt(count) !== wantCount) {
    problems.push(`${count} pages are dirty, expected ${wantCount}`);
  }
  const wantDirty = ctx.value(step, 'expect-dirty');
  if (wantDirty?.t === 'exprs') {
    for (const e of wantDirty.exprs) {
      const at = ctx.evaluate(e);
      const bit = Number((at - iova) / pageSize);
      const set = at >= iova && ((read[bit >> 3] ?? 0) & (1 << (bit & 7))) !== 0;
      if (!set) problems.push(`the page at ${hex(at)} is not dirty`);
    }
  }
  const shown =
    ranges.slice(0, 8).join(', ') + (ranges.length > 8 ? `, ... (${ranges.length} runs)` : '');
  return {
    ...outcome(
      r,
      `${count} dirty ${formatSize(pageSize)} pages (${formatSize(BigInt(count) * pageSize)})${count > 0 ? `: ${shown}` : ''}`,
    ),
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}

/** `viommu`. */
export function viommuStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'viommu') ?? '';
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_VIOMMU_ALLOC', {
    type: ctx.num(step, 'type') ?? IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    dev_id: ctx.devid(ps, step, 'device'),
    hwpt_id: ctx.needNum(step, 'hwpt'),
  });
  if (r.ret >= 0) ctx.set(name, Number(r.out.out_viommu_id));
  return outcome(r, `$${name} = vIOMMU ${String(r.out.out_viommu_id)}`);
}

/** `vdevice`. */
export function vdeviceStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'vdevice') ?? '';
  const virtId = ctx.needBig(step, 'virt-id');
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_VDEVICE_ALLOC', {
    viommu_id: ctx.needNum(step, 'viommu'),
    dev_id: ctx.devid(ps, step, 'device'),
    virt_id: virtId,
  });
  if (r.ret >= 0) ctx.set(name, Number(r.out.out_vdevice_id));
  return outcome(r, `$${name} = vDEVICE ${String(r.out.out_vdevice_id)} (virt_id ${hex(virtId)})`);
}

/** `veventq`. */
export function veventqStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'veventq') ?? '';
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_VEVENTQ_ALLOC', {
    viommu_id: ctx.needNum(step, 'viommu'),
    type: ctx.num(step, 'type') ?? IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    veventq_depth: ctx.num(step, 'depth') ?? 16,
  });
  return objectWithFd(ctx, r, name, 'vEVENTQ', r.out.out_veventq_id, r.out.out_veventq_fd);
}

const INVALIDATE_DATA_TYPES: Partial<Record<StructName, number>> = {
  iommu_hwpt_vtd_s1_invalidate: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  iommu_viommu_arm_smmuv3_invalidate: IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  iommu_hwpt_invalidate_selftest: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  iommu_viommu_invalidate_selftest: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
};

/** `invalidate`. */
export function invalidateStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const entries = ctx.value(step, 'entries');
  if (entries?.t !== 'struct') throw new StepFailure("invalidate needs 'entries'", step.loc);
  const { struct } = entries.data;
  const placed = ctx.placeUserStruct(ps, entries.data);
  const count = entries.data.entries.length;
  const r = ctx.ioctl(ps, ctx.iommufd(ps, step), 'IOMMU_HWPT_INVALIDATE', {
    hwpt_id: ctx.needNum(step, 'invalidate'),
    data_uptr: placed.va,
    data_type: INVALIDATE_DATA_TYPES[struct] ?? 0,
    entry_len: structs[struct].sizeof,
    entry_num: count,
  });
  const done = Number(r.out.entry_num);
  return {
    ...outcome(r, `${done} of ${count} request${count === 1 ? '' : 's'} handled`),
    ...(r.ret < 0 ? { summary: `${done} of ${count} handled before the failure` } : {}),
  };
}
