/**
 * A trace as strace would print it: `ioctl(3, IOMMU_IOAS_MAP, {size=40,
 * flags=IOMMU_IOAS_MAP_FIXED_IOVA|..., ...}) = 0`, the fields the kernel
 * wrote after ` => `, failures as `= -1 EEXIST (reason)`; and as JSON lines
 * with the same decoding added, for tools.
 */
import { enumValueName, structs } from '@iommufd-sim/uapi-types';
import { enumInfo, formatEnumValue } from '../uapi/field-enums.js';
import { requestByNumber } from '../uapi/requests.js';
import {
  changedFields,
  decodeStruct,
  formatChanged,
  formatStruct,
  namedFields,
} from '../uapi/struct-text.js';
import { fromHex, hex } from '../util/hex.js';
import { formatSize } from '../util/units.js';
import type { TraceEvent, TraceHeader } from './events.js';

function result(ret: number | string, e: { errno?: string; reason?: string }): string {
  if (typeof ret === 'string' ? ret.startsWith('-') : ret < 0) {
    return `-1 ${e.errno ?? '?'}${e.reason === undefined ? '' : ` (${e.reason})`}`;
  }
  return String(ret);
}

function bytes(text: string | undefined): Uint8Array {
  return fromHex(text ?? '') ?? new Uint8Array(0);
}

/** Records of `struct` in `data`, strace-style: `[{...}, {...}]`. */
function records(
  struct: 'iommu_hwpt_pgfault' | 'iommu_hwpt_page_response',
  data: Uint8Array,
): string {
  const size = structs[struct].sizeof;
  const parts: string[] = [];
  for (let at = 0; at + size <= data.length; at += size) {
    parts.push(formatStruct(struct, decodeStruct(struct, data.subarray(at, at + size))));
  }
  if (data.length % size !== 0) parts.push(`${data.length % size} more bytes`);
  return `[${parts.join(', ')}]`;
}

/** What an fd is, as far as the trace knows: opened paths and fault fds. */
export class FdNames {
  private readonly names = new Map<string, string>();

  /** Note what an event tells about fds. */
  learn(e: TraceEvent): void {
    if (e.op === 'open' && e.ret >= 0) this.names.set(`${e.pid}:${e.ret}`, e.path);
    if (
      e.op === 'ioctl' &&
      e.ret >= 0 &&
      e.name === 'IOMMU_FAULT_QUEUE_ALLOC' &&
      e.out !== undefined
    ) {
      const out = decodeStruct('iommu_fault_alloc', bytes(e.out));
      this.names.set(`${e.pid}:${String(out.out_fault_fd)}`, 'fault');
    }
    if (e.op === 'close' && e.ret === 0) this.names.delete(`${e.pid}:${e.fd}`);
  }

  /** What fd `fd` of process `pid` is. */
  kind(pid: number, fd: number): string | undefined {
    return this.names.get(`${pid}:${fd}`);
  }
}

/** The ioctl argument, decoded, then what changed (`{...} => {...}`). */
function ioctlArgument(e: TraceEvent & { op: 'ioctl' }): string {
  const info = requestByNumber(e.request);
  if (e.int !== undefined) {
    const v = Number(BigInt(e.int));
    const named = info?.name === 'VFIO_CHECK_EXTENSION' || info?.name === 'VFIO_SET_IOMMU';
    return named ? (enumValueName('vfio_extension', v) ?? String(v)) : String(v);
  }
  if (info?.struct === undefined || e.arg === undefined)
    return e.arg === undefined ? 'NULL' : `"${e.arg}"`;
  const before = decodeStruct(info.struct, bytes(e.arg));
  const text = formatStruct(info.struct, before);
  if (e.out === undefined || e.ret < 0) return text;
  const changed = formatChanged(info.struct, before, decodeStruct(info.struct, bytes(e.out)));
  return changed === '' ? text : `${text} => ${changed}`;
}

/** One event as strace-like text; undefined for events that print nothing. */
export function formatEvent(e: TraceEvent, fds: FdNames, showPid: boolean): string | undefined {
  const pid = 'pid' in e && showPid ? `[pid ${e.pid}] ` : '';
  let line: string | undefined;
  switch (e.op) {
    case 'process':
      line = `# process ${e.name}: pid ${e.pid}, ${e.options.privileged ? 'privileged' : 'unprivileged'}, uid ${e.options.uid}, RLIMIT_MEMLOCK ${formatSize(BigInt(e.options.memlockLimitBytes))}`;
      break;
    case 'step':
      line = `\n# step ${e.step ?? '?'}: ${e.title}${e.line > 0 ? ` (line ${e.line})` : ''}`;
      break;
    case 'mmap':
      line = `${pid}mmap(NULL, ${BigInt(e.length)}, PROT_READ${e.readOnly === true ? '' : '|PROT_WRITE'}, ${
        e.fd === undefined
          ? 'MAP_PRIVATE|MAP_ANONYMOUS, -1, 0'
          : `MAP_SHARED, ${e.fd}, ${e.offset ?? '0'}`
      }) = ${e.ret.startsWith('-') ? result(e.ret, e) : e.ret}`;
      break;
    case 'munmap':
      line = `${pid}munmap(${e.va}, ${BigInt(e.length)}) = ${result(e.ret, e)}`;
      break;
    case 'memfd':
      line = `${pid}memfd_create("${e.name}", 0) = ${result(e.ret, e)}  # size ${BigInt(e.size)}`;
      break;
    case 'write-memory':
      line = `${pid}--- store ${bytes(e.data).length} bytes at ${e.va}${e.ret < 0 ? ` = ${result(e.ret, e)}` : ''} ---`;
      break;
    case 'read-memory':
      line = `${pid}--- load ${e.length} bytes at ${e.va}${e.ret === null ? ' = EFAULT' : ''} ---`;
      break;
    case 'open':
      line = `${pid}openat(AT_FDCWD, "${e.path}", O_RDWR) = ${result(e.ret, e)}`;
      break;
    case 'close':
      line = `${pid}close(${e.fd}) = ${result(e.ret, e)}`;
      break;
    case 'ioctl':
      line = `${pid}ioctl(${e.fd}, ${e.name}, ${ioctlArgument(e)}) = ${result(e.ret, e)}`;
      break;
    case 'read': {
      const data = bytes(e.data);
      const shown =
        fds.kind(e.pid, e.fd) === 'fault' && data.length > 0
          ? records('iommu_hwpt_pgfault', data)
          : data.length > 0
            ? `"${e.data}"`
            : '""';
      line = `${pid}read(${e.fd}, ${shown}, ${e.count}) = ${result(e.ret, e)}`;
      break;
    }
    case 'write': {
      const data = bytes(e.data);
      const shown =
        fds.kind(e.pid, e.fd) === 'fault'
          ? records('iommu_hwpt_page_response', data)
          : `"${e.data}"`;
      line = `${pid}write(${e.fd}, ${shown}, ${data.length}) = ${result(e.ret, e)}`;
      break;
    }
    case 'poll': {
      const info = enumInfo('poll_events');
      const revents = info === undefined ? hex(e.ret) : formatEnumValue(info, e.ret);
      line = `${pid}poll([{fd=${e.fd}, events=POLLIN|POLLOUT}], 1, 0) = 1 ([{fd=${e.fd}, revents=${revents}}])`;
      break;
    }
    case 'dma': {
      const what =
        e.data !== undefined
          ? `write ${bytes(e.data).length} bytes`
          : `read ${e.length ?? 0} bytes`;
      line = `--- DMA ${e.device} ${what} at iova ${e.iova}${e.pasid === undefined ? '' : ` pasid ${e.pasid}`}: ${e.status}${
        e.fault === undefined ? '' : ` (${e.fault})`
      }, ${e.bytes} bytes moved ---`;
      break;
    }
    case 'exit':
      line = `${pid}exit_group(0) = ?`;
      break;
  }
  fds.learn(e);
  const done = (e.completed ?? []).map(
    (t) => `--- DMA #${t.id} ${t.device} ends: ${t.state}, ${t.bytes} bytes moved ---`,
  );
  return [line, ...done].filter((x) => x !== undefined).join('\n') || undefined;
}

/** A whole trace as text. */
export function formatTraceText(header: TraceHeader, events: readonly TraceEvent[]): string {
  const fds = new FdNames();
  const showPid = events.filter((e) => e.op === 'process').length > 1;
  const lines = [`# iommufd-sim trace of ${header.scenario} (Linux 6.17 iommufd model)`];
  for (const e of events) {
    const text = formatEvent(e, fds, showPid);
    if (text !== undefined) lines.push(text);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The event with decoded fields added for tools: `args` (the struct as
 * sent, flags by name) and `changed` (what the kernel wrote back). Replay
 * ignores both.
 */
export function decorateEvent(e: TraceEvent): Record<string, unknown> {
  if (e.op !== 'ioctl' || e.arg === undefined) return e as unknown as Record<string, unknown>;
  const info = requestByNumber(e.request);
  if (info?.struct === undefined) return e as unknown as Record<string, unknown>;
  const before = decodeStruct(info.struct, bytes(e.arg));
  const after = decodeStruct(info.struct, bytes(e.out));
  const changed = changedFields(before, after);
  return {
    ...e,
    args: namedFields(info.struct, before),
    ...(changed === undefined || e.ret < 0 ? {} : { changed: namedFields(info.struct, changed) }),
  };
}
