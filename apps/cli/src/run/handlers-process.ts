/**
 * Steps on the process itself: files (open, close, memfd), memory (mmap,
 * munmap, stores and loads), the last error, memory accounting and exit.
 */
import type { Step } from '../scenario/types.js';
import { describeBytes, hex } from '../util/hex.js';
import { formatSize, formatSizeExact } from '../util/units.js';
import { type RunContext, StepFailure } from './context.js';
import type { StepOutcome } from './outcome.js';

/** `open`: a path, or a device name for its cdev. */
export function openStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const target = ctx.text(step, 'open') ?? '';
  const device = target.startsWith('/')
    ? undefined
    : ctx.host.device(ctx.aliases.get(target) ?? target);
  if (!target.startsWith('/') && device === undefined) {
    throw new StepFailure(`no device '${target}'`, step.main.loc);
  }
  const path = device?.path ?? target;
  const fd = ps.traced.open(path);
  if (fd >= 0) {
    if (path === '/dev/iommu' && ps.iommufd === undefined) ps.iommufd = fd;
    if (device !== undefined) ps.devices.set(device.name, { fd });
    const as = ctx.text(step, 'as');
    if (as !== undefined) ctx.set(as, fd);
  }
  return { main: { call: 'open', ret: fd }, summary: fd >= 0 ? `${path} is fd ${fd}` : '' };
}

/** `close`. */
export function closeStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const fd = ctx.needNum(step, 'close');
  const ret = ps.traced.close(fd);
  if (ret === 0) {
    if (ps.iommufd === fd) ps.iommufd = undefined;
    for (const [name, d] of ps.devices) if (d.fd === fd) ps.devices.delete(name);
  }
  return { main: { call: 'close', ret }, summary: ret === 0 ? `fd ${fd} closed` : '' };
}

/** `mmap`. */
export function mmapStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'mmap') ?? '';
  const length = ctx.needBig(step, 'length');
  const memfd = ctx.num(step, 'memfd');
  const offset = ctx.big(step, 'offset');
  const va = ps.traced.mmap(length, {
    ...(memfd === undefined ? {} : { fd: memfd }),
    ...(offset === undefined ? {} : { offset }),
    ...(ctx.bool(step, 'readonly', false) ? { readOnly: true } : {}),
  });
  if (va >= 0n) {
    ps.buffers.set(va, length);
    ctx.set(name, va);
    const data = ctx.bytes(step, 'data');
    if (data !== undefined && ps.traced.writeMemory(va, data) < 0) {
      throw ctx.callFailure(ps, 'storing data', -1);
    }
  }
  return {
    main: { call: 'mmap', ret: va < 0n ? Number(va) : 0 },
    summary: va >= 0n ? `$${name} = ${hex(va)} (${formatSize(length)})` : '',
  };
}

/** `munmap`. */
export function munmapStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const va = ctx.needBig(step, 'munmap');
  const length = ctx.big(step, 'length') ?? ps.buffers.get(va);
  if (length === undefined) {
    throw new StepFailure(`no buffer at ${hex(va)} that a step mapped: give 'length'`, step.loc);
  }
  const ret = ps.traced.munmap(va, length);
  if (ret === 0) ps.buffers.delete(va);
  return {
    main: { call: 'munmap', ret },
    summary: ret === 0 ? `${formatSize(length)} unmapped` : '',
  };
}

/** `memfd`. */
export function memfdStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const name = ctx.text(step, 'memfd') ?? '';
  const size = ctx.needBig(step, 'size');
  const fd = ps.traced.memfdCreate(name, size);
  if (fd >= 0) ctx.set(name, fd);
  return {
    main: { call: 'memfd_create', ret: fd },
    summary: fd >= 0 ? `$${name} = fd ${fd} (${formatSize(size)})` : '',
  };
}

/** `write-memory`. */
export function writeMemoryStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const va = ctx.needBig(step, 'write-memory');
  let data = ctx.bytes(step, 'data');
  const words = ctx.value(step, 'u64');
  if (words?.t === 'exprs') {
    data = new Uint8Array(words.exprs.length * 8);
    const view = new DataView(data.buffer);
    words.exprs.forEach((e, i) => {
      view.setBigUint64(i * 8, BigInt.asUintN(64, ctx.evaluate(e)), true);
    });
  }
  if (data === undefined) throw new StepFailure("write-memory needs 'data' or 'u64'", step.loc);
  const ret = ps.traced.writeMemory(va, data);
  return {
    main: { call: 'store', ret },
    summary: ret === 0 ? `${data.length} bytes at ${hex(va)}` : '',
  };
}

/** `expect-memory`. */
export function expectMemoryStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const va = ctx.needBig(step, 'expect-memory');
  const want = ctx.bytes(step, 'equals') ?? new Uint8Array(0);
  const got = ps.traced.readMemory(va, want.length);
  if (got === null) {
    return { summary: '', problem: `[${hex(va)}, +${want.length}) is not mapped` };
  }
  const same = got.every((b, i) => b === want[i]);
  return {
    summary: `${want.length} bytes at ${hex(va)}${same ? ' as expected' : ''}`,
    ...(same
      ? {}
      : {
          problem: `memory at ${hex(va)} holds ${describeBytes(got, 32)}, expected ${describeBytes(want, 32)}`,
        }),
  };
}

/** `exit`. */
export function exitStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  ps.traced.exit();
  ps.iommufd = undefined;
  ps.devices.clear();
  ps.buffers.clear();
  return { summary: `process ${ps.spec.name} exited; every fd closed` };
}

/** `expect-errno`. */
export function expectErrnoStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const errno = ctx.needNum(step, 'expect-errno');
  const e = ps.traced.proc.lastError();
  if (e === null) return { summary: '', problem: 'no call has failed yet' };
  const problems: string[] = [];
  if (e.errno !== errno) problems.push(`the last failure was ${e.name}, not errno ${errno}`);
  const call = ctx.text(step, 'call');
  if (call !== undefined && call !== e.call) problems.push(`it came from ${e.call}, not ${call}`);
  const reason = ctx.value(step, 'reason');
  if (reason?.t === 'regex' && !reason.regex.test(e.reason)) {
    problems.push(`its reason does not match /${reason.regex.source}/`);
  }
  return {
    summary: `${e.name} from ${e.call}: ${e.reason}`,
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}

/** `memory-status`. */
export function memoryStatusStep(step: Step, ctx: RunContext): StepOutcome {
  const ps = ctx.proc(step);
  const st = ps.traced.proc.status();
  const problems: string[] = [];
  const check = (field: string, got: bigint, what: string) => {
    const want = ctx.big(step, field);
    if (want !== undefined && want !== got) {
      problems.push(`${what} is ${formatSizeExact(got)}, expected ${formatSizeExact(want)}`);
    }
  };
  check('pinned', st.pinnedBytes, 'pinned');
  check('locked', st.lockedBytes, 'locked');
  check('user-locked', st.userLockedBytes, "the user's locked memory");
  return {
    summary: `pinned ${formatSize(st.pinnedBytes)}, locked ${formatSize(st.lockedBytes)}, user locked ${formatSize(st.userLockedBytes)} of RLIMIT_MEMLOCK ${formatSize(st.memlockLimitBytes)}${st.ipcLock ? ' (CAP_IPC_LOCK: not charged)' : ''}; host pinned pages ${ctx.host.pinnedPages()}`,
    ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
  };
}
