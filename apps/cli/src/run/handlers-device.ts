/**
 * Steps about devices: binding and attaching through their VFIO cdev, DMA
 * through the IOMMU, the page-fault fd (read records, write responses,
 * poll), and walking the page table a device translates through.
 */
import {
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMUFD_PAGE_RESP_SUCCESS,
  structs,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_DETACH_PASID,
  veventPayloads,
} from '@iommufd-sim/uapi-types';
import type { Step } from '../scenario/types.js';
import { enumInfo, fieldEnum, formatEnumValue } from '../uapi/field-enums.js';
import { type Decoded, decodeStruct, formatStruct } from '../uapi/struct-text.js';
import { describeBytes, fromHex, hex, toHex } from '../util/hex.js';
import { formatSize } from '../util/units.js';
import { type RunContext, StepFailure } from './context.js';
import type { StepOutcome } from './outcome.js';

/** `bind`: open the cdev if needed, then VFIO_DEVICE_BIND_IOMMUFD. */
export function bindStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const device = ctx.hostDevice(step, 'bind');
  let fd = ps.devices.get(device.name)?.fd;
  if (fd === undefined) {
    fd = ps.traced.open(device.path);
    if (fd < 0) throw ctx.callFailure(ps, `open ${device.path}`, fd);
    ps.devices.set(device.name, { fd });
  }
  const r = ctx.ioctl(ps, fd, 'VFIO_DEVICE_BIND_IOMMUFD', { iommufd: ctx.iommufd(ps, step) });
  const devid = Number(r.out.out_devid);
  if (r.ret >= 0) {
    ps.devices.set(device.name, { fd, devid });
    const as = ctx.text(step, 'as');
    if (as !== undefined) {
      ctx.aliases.set(as, device.name);
      ctx.set(as, devid);
      ctx.set(`${as}.fd`, fd);
    }
  }
  return {
    main: { call: r.call, ret: r.ret },
    output: r.out,
    summary: r.ret >= 0 ? `${device.path} (fd ${fd}) is dev_id ${devid}` : '',
  };
}

/** `attach`. */
export function attachStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const pasid = ctx.num(step, 'pasid');
  const to = ctx.needNum(step, 'to');
  const r = ctx.ioctl(ps, ctx.deviceFd(ps, step, 'attach'), 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', {
    flags: pasid === undefined ? 0 : VFIO_DEVICE_ATTACH_PASID,
    pt_id: to,
    pasid: pasid ?? 0,
  });
  const hwpt = Number(r.out.pt_id);
  const as = ctx.text(step, 'as');
  if (r.ret >= 0 && as !== undefined) ctx.set(as, hwpt);
  const where = pasid === undefined ? 'RID' : `PASID ${pasid}`;
  return {
    main: { call: r.call, ret: r.ret },
    output: r.out,
    summary:
      r.ret >= 0
        ? `${where} on HWPT ${hwpt}${hwpt !== to ? ` (the automatic HWPT of IOAS ${to})` : ''}`
        : '',
  };
}

/** `detach`. */
export function detachStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const pasid = ctx.num(step, 'pasid');
  const r = ctx.ioctl(ps, ctx.deviceFd(ps, step, 'detach'), 'VFIO_DEVICE_DETACH_IOMMUFD_PT', {
    flags: pasid === undefined ? 0 : VFIO_DEVICE_DETACH_PASID,
    pasid: pasid ?? 0,
  });
  return {
    main: { call: r.call, ret: r.ret },
    summary:
      r.ret >= 0 ? `${pasid === undefined ? 'RID' : `PASID ${pasid}`} detached (blocked)` : '',
  };
}

/** `dma`: a write, a fill or a read by the device. */
export function dmaStep(step: Step, ctx: RunContext): StepOutcome {
  const device = ctx.hostDevice(step, 'dma');
  const iova = ctx.needBig(step, 'iova');
  const pasid = ctx.num(step, 'pasid');
  let data = ctx.bytes(step, 'write');
  const fill = ctx.num(step, 'fill');
  if (fill !== undefined) data = new Uint8Array(ctx.needNum(step, 'length')).fill(fill);
  const read = ctx.num(step, 'read');
  if (data === undefined && read === undefined) {
    throw new StepFailure("dma needs 'write', 'fill' with 'length', or 'read'", step.loc);
  }
  const e = ctx.tracer.deviceDma(device.name, {
    iova,
    ...(data === undefined ? { length: read ?? 0 } : { data }),
    ...(pasid === undefined ? {} : { pasid }),
  });
  const what = data === undefined ? `read ${read} bytes` : `write ${data.length} bytes`;
  const tail =
    e.status === 'page-request'
      ? ' (waiting for an answer on the fault fd)'
      : e.fault === undefined
        ? ''
        : ` (${e.fault} after ${e.bytes} bytes)`;
  const equals = ctx.bytes(step, 'equals');
  let problem: string | undefined;
  const got = fromHex(e.read ?? '') ?? new Uint8Array(0);
  if (equals !== undefined && e.status === 'done' && toHex(equals) !== (e.read ?? '')) {
    problem = `the device read ${describeBytes(got, 32)}, expected ${describeBytes(equals, 32)}`;
  }
  const readText = e.read !== undefined && e.status === 'done' ? `: ${describeBytes(got)}` : '';
  return {
    dmaStatus: e.status,
    summary: `${what} at ${hex(iova)}${pasid === undefined ? '' : ` PASID ${pasid}`} -> ${e.status}${tail}${readText}`,
    ...(problem === undefined ? {} : { problem }),
  };
}

const RECORD = structs.iommu_hwpt_pgfault.sizeof;

/** `read-faults`. */
export function readFaultsStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const fd = ctx.needNum(step, 'read-faults');
  const max = ctx.num(step, 'max') ?? 16;
  const { ret, data } = ps.traced.read(fd, max * RECORD);
  const records: Decoded[] = [];
  for (let at = 0; at + RECORD <= data.length; at += RECORD) {
    records.push(decodeStruct('iommu_hwpt_pgfault', data.subarray(at, at + RECORD)));
  }
  const first = records[0];
  const perm = fieldEnum('iommu_hwpt_pgfault', 'perm');
  const firstText =
    first === undefined || perm === undefined
      ? ''
      : `; first: dev_id ${String(first.dev_id)} ${formatEnumValue(perm, first.perm as number)} at ${hex(first.addr as bigint)}, cookie ${String(first.cookie)}`;
  return readOutcome(
    step,
    ctx,
    ret,
    records,
    `${plural(records.length, 'record')}${firstText}`,
    records.map((r) => formatStruct('iommu_hwpt_pgfault', r)),
  );
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** A read of records from an fd: the record `save` reads, and the `expect-count` check. */
function readOutcome(
  step: Step,
  ctx: RunContext,
  ret: number,
  records: readonly Decoded[],
  summary: string,
  details: string[],
): StepOutcome {
  const want = ctx.num(step, 'expect-count');
  const output = records[ctx.num(step, 'record') ?? 0];
  return {
    main: { call: 'read', ret },
    ...(output === undefined ? {} : { output }),
    summary: ret < 0 ? '' : summary,
    details,
    ...(want !== undefined && want !== records.length
      ? { problem: `${records.length} came back, expected ${want}` }
      : {}),
  };
}

/** `respond`. */
export function respondStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const fd = ctx.needNum(step, 'respond');
  const cookie = ctx.needNum(step, 'cookie');
  const code = ctx.num(step, 'code') ?? IOMMUFD_PAGE_RESP_SUCCESS;
  const bytes = ctx.encodeValue('iommu_hwpt_page_response', { cookie, code });
  const ret = ps.traced.write(fd, bytes);
  const completed = ctx.tracer.events.at(-1)?.completed ?? [];
  const codeInfo = fieldEnum('iommu_hwpt_page_response', 'code');
  const codeName = codeInfo === undefined ? String(code) : formatEnumValue(codeInfo, code);
  const ended = completed.map(
    (t) => `DMA #${t.id} of ${t.device} ${t.state} (${formatSize(t.bytes)})`,
  );
  const want = ctx.text(step, 'expect-dma');
  let problem: string | undefined;
  if (want !== undefined && (completed.length === 0 || completed.some((t) => t.state !== want))) {
    problem =
      completed.length === 0
        ? `no DMA ended, expected one ${want}`
        : `the DMA ended ${completed.map((t) => t.state).join(', ')}, expected ${want}`;
  }
  return {
    main: { call: 'write', ret },
    summary:
      ret < 0
        ? ''
        : `cookie ${cookie} answered ${codeName}${ended.length > 0 ? `; ${ended.join('; ')}` : ''}`,
    ...(problem === undefined ? {} : { problem }),
  };
}

/** `poll`. */
export function pollStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const fd = ctx.needNum(step, 'poll');
  const revents = ps.traced.poll(fd);
  const info = enumInfo('poll_events');
  const text = info === undefined ? String(revents) : formatEnumValue(info, revents);
  const want = ctx.num(step, 'expect-events');
  return {
    summary: `revents ${text}`,
    ...(want !== undefined && want !== revents
      ? {
          problem: `revents ${text}, expected ${info === undefined ? String(want) : formatEnumValue(info, want)}`,
        }
      : {}),
  };
}

/** `walk`: the page-table walk of the domain the device (or PASID) translates through. */
export function walkStep(step: Step, ctx: RunContext): StepOutcome {
  const device = ctx.hostDevice(step, 'walk');
  const iova = ctx.needBig(step, 'iova');
  const pasid = ctx.num(step, 'pasid') ?? 0;
  const hwpt = device.boundTo?.attachment(pasid) ?? null;
  const domain = hwpt?.domain ?? null;
  if (domain === null) {
    throw new StepFailure(
      `${device.name} ${pasid === 0 ? 'RID' : `PASID ${pasid}`} is not attached to anything`,
      step.loc,
    );
  }
  const table = domain.pageTable ?? domain.parent?.pageTable ?? null;
  if (table === null) {
    throw new StepFailure(
      `the ${domain.type} domain of ${device.name} has no page table`,
      step.loc,
    );
  }
  const what =
    domain.pageTable === null
      ? `stage 2 (the nesting parent) of HWPT ${hwpt?.id ?? '?'}, a nested domain`
      : `HWPT ${hwpt?.id ?? '?'}, a ${domain.type} domain`;
  const at = Number(iova);
  const steps = table.walk(at);
  const t = table.translate(at);
  ctx.walks.push({
    step: step.number,
    device: device.name,
    iommu: device.iommu.name,
    iova,
    pasid,
    table: what,
    steps,
    ok: t.ok,
    ...(t.ok ? { pa: t.pa, pageSize: t.pageSize } : { fault: t.fault ?? 'fault' }),
  });
  const path = steps
    .map(
      (s) =>
        `L${s.level}[${s.index}] ${s.kind}${s.pageSize === undefined ? '' : ` ${formatSize(s.pageSize)}`}`,
    )
    .join(' -> ');
  return {
    summary: `${device.iommu.name} ${what}: ${path}${t.ok ? ` -> pa ${hex(t.pa)}` : ` -> ${t.fault ?? 'fault'}`}`,
    details: steps.map(
      (s) =>
        `level ${s.level} table ${hex(s.tableAddress)} [${s.index}] @ ${hex(s.entryAddress)} = ${hex(s.raw)} ${s.kind}`,
    ),
  };
}

/** `read-events`: vEVENT headers and their events from a vEVENTQ fd. */
export function readEventsStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const fd = ctx.needNum(step, 'read-events');
  const type = ctx.num(step, 'type') ?? IOMMU_VEVENTQ_TYPE_ARM_SMMUV3;
  const { ret, data } = ps.traced.read(fd, ctx.num(step, 'max') ?? 4096);
  const headerSize = structs.iommufd_vevent_header.sizeof;
  const payload = veventPayloads.get(type);
  const headers: Decoded[] = [];
  const details: string[] = [];
  let at = 0;
  while (at + headerSize <= data.length) {
    const header = decodeStruct('iommufd_vevent_header', data.subarray(at, at + headerSize));
    headers.push(header);
    at += headerSize;
    const lost = (Number(header.flags) & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0;
    let line = formatStruct('iommufd_vevent_header', header);
    if (!lost && payload !== undefined) {
      const size = structs[payload].sizeof;
      line += ` ${payload} ${formatStruct(payload, decodeStruct(payload, data.subarray(at, at + size)))}`;
      at += size;
    } else if (!lost) break;
    details.push(line);
  }
  const lost = headers.filter(
    (h) => (Number(h.flags) & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) !== 0,
  ).length;
  const lostText = lost > 0 ? ` (${lost} LOST_EVENTS marker)` : '';
  return readOutcome(
    step,
    ctx,
    ret,
    headers,
    `${plural(headers.length, 'event')}${lostText}`,
    details,
  );
}
