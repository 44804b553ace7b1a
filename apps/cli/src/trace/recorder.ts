/**
 * The recording layer: every call the CLI makes on the model goes through a
 * {@link TracedProcess} or {@link Tracer.deviceDma}, which make the call and
 * append what went in and what came out to the trace.
 */
import type { DmaRequest } from '@iommufd-sim/hw-models';
import type { DmaTransfer, Host, HostConfig, Process } from '@iommufd-sim/iommufd-core';
import { requestByNumber } from '../uapi/requests.js';
import { hex, toHex } from '../util/hex.js';
import {
  type CompletedDma,
  TRACE_FORMAT,
  TRACE_VERSION,
  type Trace,
  type TraceEvent,
} from './events.js';

/** Collects the events of one run. */
export class Tracer {
  /** Everything recorded so far. */
  readonly events: TraceEvent[] = [];
  /** The step calls belong to (1-based), or undefined between steps. */
  step: number | undefined;
  private completed: CompletedDma[] = [];

  constructor(
    /** The host calls go to. */
    readonly host: Host,
    /** Its configuration, for the header. */
    readonly config: HostConfig,
    /** The scenario's name, for the header. */
    readonly scenario: string,
  ) {
    host.onDmaComplete = (t: DmaTransfer) => {
      this.completed.push({
        id: t.id,
        device: t.device,
        state: t.state,
        bytes: t.outcome.bytes,
      });
    };
  }

  /** Append an event, tagged with the current step and the transfers that ended during it. */
  emit(event: TraceEvent): TraceEvent {
    const tagged: TraceEvent = { ...event };
    if (this.step !== undefined) tagged.step = this.step;
    if (this.completed.length > 0) {
      tagged.completed = this.completed;
      this.completed = [];
    }
    this.events.push(tagged);
    return tagged;
  }

  /** The trace so far. */
  trace(): Trace {
    return {
      header: {
        op: 'trace',
        format: TRACE_FORMAT,
        version: TRACE_VERSION,
        scenario: this.scenario,
        host: this.config,
      },
      events: this.events,
    };
  }

  /** A traced process on the host. */
  createProcess(
    name: string,
    options: { memlockLimitBytes?: bigint; privileged?: boolean; ipcLock?: boolean; uid?: number },
  ): TracedProcess {
    const proc = this.host.createProcess(options);
    this.emit({
      op: 'process',
      pid: proc.pid,
      name,
      options: {
        memlockLimitBytes: hex(proc.memlockLimitBytes),
        privileged: proc.privileged,
        ipcLock: proc.ipcLock,
        uid: proc.uid,
      },
    });
    return new TracedProcess(this, proc, name);
  }

  /** host.deviceDma, recorded. */
  deviceDma(device: string, request: DmaRequest): TraceEvent & { op: 'dma' } {
    const out = this.host.deviceDma(device, request);
    const event: TraceEvent = {
      op: 'dma',
      device,
      iova: hex(request.iova),
      ...(request.pasid === undefined ? {} : { pasid: request.pasid }),
      ...(request.data === undefined
        ? { length: request.length ?? 0 }
        : { data: toHex(request.data) }),
      status: out?.status ?? 'none',
      bytes: out?.bytes ?? 0,
      ...(out !== undefined && request.data === undefined ? { read: toHex(out.data) } : {}),
      ...(out !== undefined && out.status !== 'done' ? { fault: out.fault.name } : {}),
    };
    return this.emit(event) as TraceEvent & { op: 'dma' };
  }
}

/** A process whose every call is recorded. */
export class TracedProcess {
  constructor(
    private readonly tracer: Tracer,
    /** The model's process. */
    readonly proc: Process,
    /** Its name in the scenario. */
    readonly name: string,
  ) {}

  /** Its pid. */
  get pid(): number {
    return this.proc.pid;
  }

  private failure(ret: number | bigint): { errno?: string; reason?: string } {
    if (ret >= 0) return {};
    const e = this.proc.lastError();
    return e === null ? {} : { errno: e.name, reason: e.reason };
  }

  /** Record a call of this process that returned `ret` (with its errno and reason when it failed). */
  private record<R extends number | bigint>(ret: R, event: Record<string, unknown>): R {
    this.tracer.emit({
      ...event,
      pid: this.pid,
      ret: typeof ret === 'bigint' ? hex(ret) : ret,
      ...this.failure(ret),
    } as unknown as TraceEvent);
    return ret;
  }

  /** mmap(2): the address, or a negative errno as a bigint. */
  mmap(length: bigint, options: { fd?: number; offset?: bigint; readOnly?: boolean } = {}): bigint {
    return this.record(this.proc.mmap(length, options), {
      op: 'mmap',
      length: hex(length),
      ...(options.fd === undefined ? {} : { fd: options.fd }),
      ...(options.offset === undefined ? {} : { offset: hex(options.offset) }),
      ...(options.readOnly === true ? { readOnly: true } : {}),
    });
  }

  /** munmap(2). */
  munmap(va: bigint, length: bigint): number {
    return this.record(this.proc.munmap(va, length), {
      op: 'munmap',
      va: hex(va),
      length: hex(length),
    });
  }

  /** memfd_create(2) with an initial size. */
  memfdCreate(name: string, size: bigint): number {
    return this.record(this.proc.memfdCreate(name, size), { op: 'memfd', name, size: hex(size) });
  }

  /** A store to the process's memory. */
  writeMemory(va: bigint, data: Uint8Array): number {
    return this.record(this.proc.writeMemory(va, data), {
      op: 'write-memory',
      va: hex(va),
      data: toHex(data),
    });
  }

  /** A load from the process's memory (null when unmapped). */
  readMemory(va: bigint, length: number): Uint8Array | null {
    const ret = this.proc.readMemory(va, length);
    this.tracer.emit({
      op: 'read-memory',
      pid: this.pid,
      va: hex(va),
      length,
      ret: ret === null ? null : toHex(ret),
    });
    return ret;
  }

  /** open(2). */
  open(path: string): number {
    return this.record(this.proc.open(path), { op: 'open', path });
  }

  /** close(2). */
  close(fd: number): number {
    return this.record(this.proc.close(fd), { op: 'close', fd });
  }

  /** ioctl(2) with a struct (bytes, updated in place) or an integer argument. */
  ioctl(fd: number, request: number, arg: Uint8Array | bigint): number {
    const before = arg instanceof Uint8Array ? toHex(arg) : undefined;
    return this.record(this.proc.ioctl(fd, request, arg), {
      op: 'ioctl',
      fd,
      request,
      name: requestByNumber(request)?.name ?? hex(request),
      ...(arg instanceof Uint8Array
        ? { arg: before as string, out: toHex(arg) }
        : { int: hex(arg) }),
    });
  }

  /** read(2) of `count` bytes: the return value and the bytes. */
  read(fd: number, count: number): { ret: number; data: Uint8Array } {
    const buffer = new Uint8Array(count);
    const ret = this.proc.read(fd, buffer);
    const data = buffer.subarray(0, Math.max(ret, 0));
    this.record(ret, { op: 'read', fd, count, ...(ret > 0 ? { data: toHex(data) } : {}) });
    return { ret, data };
  }

  /** write(2). */
  write(fd: number, data: Uint8Array): number {
    return this.record(this.proc.write(fd, data), { op: 'write', fd, data: toHex(data) });
  }

  /** poll(2) on one fd: its revents. */
  poll(fd: number): number {
    const ret = this.proc.poll(fd);
    this.tracer.emit({ op: 'poll', pid: this.pid, fd, ret });
    return ret;
  }

  /** exit(2): every fd closed. */
  exit(): void {
    this.proc.exit();
    this.tracer.emit({ op: 'exit', pid: this.pid });
  }
}
