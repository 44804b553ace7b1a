/**
 * `replay`: read a JSON-lines trace, build a fresh host from its header,
 * make every recorded call again in order with the recorded arguments, and
 * compare each answer (return value, bytes written back, data read, DMA
 * outcome, transfers completed) with the recorded one.
 */
import { createHost, type DmaTransfer, type Process } from '@iommufd-sim/iommufd-core';
import { errnoName } from '@iommufd-sim/uapi-types';
import { requestByNumber } from '../uapi/requests.js';
import { changedFields, decodeStruct } from '../uapi/struct-text.js';
import { fromHex, hex, toHex } from '../util/hex.js';
import {
  type CompletedDma,
  TRACE_FORMAT,
  type Trace,
  type TraceEvent,
  type TraceHeader,
} from './events.js';

/** A trace file that cannot be read. */
export class TraceFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}${line > 0 ? `:${line}` : ''}: ${message}`);
    this.name = 'TraceFileError';
  }
}

const OPS = new Set([
  'process',
  'step',
  'mmap',
  'munmap',
  'memfd',
  'write-memory',
  'read-memory',
  'open',
  'close',
  'ioctl',
  'read',
  'write',
  'poll',
  'dma',
  'exit',
]);

/** Parse JSON lines into a trace; throws {@link TraceFileError} naming the bad line. */
export function parseTraceJsonl(text: string, file: string): Trace {
  const lines = text.split('\n');
  let header: TraceHeader | undefined;
  const events: TraceEvent[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new TraceFileError(file, i + 1, `not JSON: ${(e as Error).message}`);
    }
    const op = (value as { op?: unknown } | null)?.op;
    if (header === undefined) {
      if (op !== 'trace' || (value as TraceHeader).format !== TRACE_FORMAT) {
        throw new TraceFileError(
          file,
          i + 1,
          `the first line must be the ${TRACE_FORMAT} header ({"op":"trace",...}); is this a trace from 'iommufd-sim trace --format json'?`,
        );
      }
      header = value as TraceHeader;
      return;
    }
    if (typeof op !== 'string' || !OPS.has(op)) {
      throw new TraceFileError(file, i + 1, `unknown event op ${JSON.stringify(op)}`);
    }
    events.push(value as TraceEvent);
  });
  if (header === undefined) throw new TraceFileError(file, 0, 'the file is empty');
  return { header, events };
}

/** One answer that came out differently. */
export interface ReplayDifference {
  /** Line in the trace file (the header is line 1). */
  readonly line: number;
  /** The step it belongs to. */
  readonly step?: number;
  /** The call (`IOMMU_IOAS_MAP`, `mmap`, `dma`). */
  readonly call: string;
  readonly what: string;
}

/** What a replay found. */
export interface ReplayResult {
  /** Calls replayed and compared. */
  readonly compared: number;
  readonly differences: readonly ReplayDifference[];
}

function describeRet(
  ret: number | string | null,
  failure?: { errno?: string; reason?: string },
): string {
  if (ret === null) return 'EFAULT';
  const n = typeof ret === 'string' ? BigInt(ret) : BigInt(ret);
  if (n >= 0n) return typeof ret === 'string' ? ret : String(ret);
  const name = failure?.errno ?? errnoName(Number(-n)) ?? String(n);
  return `-1 ${name}${failure?.reason === undefined ? '' : ` (${failure.reason})`}`;
}

function completedText(list: readonly CompletedDma[] | undefined): string {
  return (list ?? []).map((t) => `#${t.id} ${t.device} ${t.state} ${t.bytes}`).join(', ') || 'none';
}

/** Play `trace` on a fresh host and compare every answer. */
export function replayTrace(trace: Trace, file: string): ReplayResult {
  let host: ReturnType<typeof createHost>;
  try {
    host = createHost(trace.header.host);
  } catch (e) {
    throw new TraceFileError(file, 1, `the host cannot be built: ${(e as Error).message}`);
  }
  let completed: CompletedDma[] = [];
  host.onDmaComplete = (t: DmaTransfer) => {
    completed.push({ id: t.id, device: t.device, state: t.state, bytes: t.outcome.bytes });
  };
  const procs = new Map<number, Process>();
  const differences: ReplayDifference[] = [];
  let compared = 0;

  trace.events.forEach((e, i) => {
    const line = i + 2;
    const differ = (call: string, what: string) =>
      differences.push({ line, ...(e.step === undefined ? {} : { step: e.step }), call, what });
    const proc = (pid: number): Process => {
      const p = procs.get(pid);
      if (p === undefined)
        throw new TraceFileError(file, line, `pid ${pid} has no 'process' line before it`);
      return p;
    };
    const same = (
      call: string,
      got: number | string | null,
      want: number | string | null,
      failure: { errno?: string; reason?: string },
      p?: Process,
    ) => {
      if (got === want) return;
      const err = p?.lastError();
      differ(
        call,
        `returned ${describeRet(got, err === null || err === undefined ? {} : { errno: err.name, reason: err.reason })}, the trace says ${describeRet(want, failure)}`,
      );
    };
    completed = [];
    switch (e.op) {
      case 'step':
        return;
      case 'process': {
        const o = e.options;
        const p = host.createProcess({
          memlockLimitBytes: BigInt(o.memlockLimitBytes),
          privileged: o.privileged,
          ipcLock: o.ipcLock,
          uid: o.uid,
        });
        procs.set(e.pid, p);
        if (p.pid !== e.pid) differ('process', `got pid ${p.pid}, the trace says ${e.pid}`);
        return;
      }
      case 'mmap': {
        const p = proc(e.pid);
        const ret = p.mmap(BigInt(e.length), {
          ...(e.fd === undefined ? {} : { fd: e.fd }),
          ...(e.offset === undefined ? {} : { offset: BigInt(e.offset) }),
          ...(e.readOnly === true ? { readOnly: true } : {}),
        });
        same('mmap', hex(ret), e.ret, e, p);
        break;
      }
      case 'munmap': {
        const p = proc(e.pid);
        same('munmap', p.munmap(BigInt(e.va), BigInt(e.length)), e.ret, e, p);
        break;
      }
      case 'memfd': {
        const p = proc(e.pid);
        same('memfd_create', p.memfdCreate(e.name, BigInt(e.size)), e.ret, e, p);
        break;
      }
      case 'write-memory': {
        const p = proc(e.pid);
        same(
          'store',
          p.writeMemory(BigInt(e.va), fromHex(e.data) ?? new Uint8Array(0)),
          e.ret,
          e,
          p,
        );
        break;
      }
      case 'read-memory': {
        const p = proc(e.pid);
        const got = p.readMemory(BigInt(e.va), e.length);
        const text = got === null ? null : toHex(got);
        if (text !== e.ret)
          differ(
            'load',
            `read ${text === null ? 'EFAULT' : `"${short(text)}"`}, the trace says ${e.ret === null ? 'EFAULT' : `"${short(e.ret)}"`}`,
          );
        break;
      }
      case 'open': {
        const p = proc(e.pid);
        same(`open ${e.path}`, p.open(e.path), e.ret, e, p);
        break;
      }
      case 'close': {
        const p = proc(e.pid);
        same('close', p.close(e.fd), e.ret, e, p);
        break;
      }
      case 'ioctl': {
        const p = proc(e.pid);
        const arg =
          e.int !== undefined ? BigInt(e.int) : (fromHex(e.arg ?? '') ?? new Uint8Array(0));
        const ret = p.ioctl(e.fd, e.request, arg);
        same(e.name, ret, e.ret, e, p);
        if (arg instanceof Uint8Array && e.out !== undefined && toHex(arg) !== e.out) {
          const info = requestByNumber(e.request);
          let what = `wrote back ${short(toHex(arg))}, the trace says ${short(e.out)}`;
          if (info?.struct !== undefined) {
            const want = decodeStruct(info.struct, fromHex(e.out) ?? new Uint8Array(0));
            const got = decodeStruct(info.struct, arg);
            const diff = changedFields(want, got);
            if (diff !== undefined) {
              what = `wrote back ${Object.keys(diff)
                .map((k) => `${k}=${show(got[k])} (the trace says ${show(want[k])})`)
                .join(', ')}`;
            }
          }
          differ(e.name, what);
        }
        break;
      }
      case 'read': {
        const p = proc(e.pid);
        const buf = new Uint8Array(e.count);
        const ret = p.read(e.fd, buf);
        same('read', ret, e.ret, e, p);
        const data = ret > 0 ? toHex(buf.subarray(0, ret)) : undefined;
        if (ret === e.ret && data !== e.data)
          differ('read', `read "${short(data ?? '')}", the trace says "${short(e.data ?? '')}"`);
        break;
      }
      case 'write': {
        const p = proc(e.pid);
        same('write', p.write(e.fd, fromHex(e.data) ?? new Uint8Array(0)), e.ret, e, p);
        break;
      }
      case 'poll': {
        const p = proc(e.pid);
        same('poll', p.poll(e.fd), e.ret, {});
        break;
      }
      case 'dma': {
        const out = host.deviceDma(e.device, {
          iova: BigInt(e.iova),
          ...(e.data === undefined
            ? { length: e.length ?? 0 }
            : { data: fromHex(e.data) ?? new Uint8Array(0) }),
          ...(e.pasid === undefined ? {} : { pasid: e.pasid }),
        });
        const status = out?.status ?? 'none';
        const read = out !== undefined && e.data === undefined ? toHex(out.data) : undefined;
        if (status !== e.status || (out?.bytes ?? 0) !== e.bytes) {
          differ(
            'dma',
            `${e.device} ended ${status} after ${out?.bytes ?? 0} bytes, the trace says ${e.status} after ${e.bytes}`,
          );
        } else if (read !== e.read) {
          differ(
            'dma',
            `${e.device} read "${short(read ?? '')}", the trace says "${short(e.read ?? '')}"`,
          );
        }
        break;
      }
      case 'exit':
        proc(e.pid).exit();
        break;
    }
    compared++;
    if (completedText(completed) !== completedText(e.completed)) {
      differ(
        'dma',
        `transfers completed: ${completedText(completed)}, the trace says ${completedText(e.completed)}`,
      );
    }
  });
  return { compared, differences };
}

function short(text: string): string {
  return text.length > 48 ? `${text.slice(0, 48)}...` : text;
}

function show(v: unknown): string {
  return typeof v === 'bigint'
    ? hex(v)
    : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? hex(x) : x));
}
