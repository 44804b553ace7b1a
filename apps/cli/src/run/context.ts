/**
 * The state a run carries from step to step: the host and its traced
 * processes, the variables steps set, which device each process opened and
 * bound, and the buffers it mapped; plus the helpers every step uses to read
 * its fields and make an ioctl.
 */
import type { Host, HostDevice } from '@iommufd-sim/iommufd-core';
import { type StructName, structs } from '@iommufd-sim/uapi-types';
import { type Expr, evalExpr, UnsetVariable } from '../scenario/expr.js';
import type {
  Loc,
  ProcessSpec,
  Scenario,
  Step,
  StructArgs,
  UserStruct,
  Value,
} from '../scenario/types.js';
import type { TracedProcess, Tracer } from '../trace/recorder.js';
import { requestByName } from '../uapi/requests.js';
import { type Decoded, decodeStruct } from '../uapi/struct-text.js';
import { hex } from '../util/hex.js';
import type { SnapshotRecord, WalkRecord } from './records.js';

/** A step could not do what it was asked (a variable without a value, a failed setup call, ...). */
export class StepFailure extends Error {
  constructor(
    message: string,
    /** Where in the file the problem is. */
    readonly loc?: Loc,
  ) {
    super(message);
  }
}

/** What a process opened and mapped. */
export interface ProcState {
  readonly spec: ProcessSpec;
  readonly traced: TracedProcess;
  /** The first /dev/iommu it opened: the default for steps that need one. */
  iommufd: number | undefined;
  /** Mapped buffers: address → length. */
  readonly buffers: Map<bigint, bigint>;
  /** Per device name: its cdev fd and dev_id once bound. */
  readonly devices: Map<string, { fd: number; devid?: number }>;
}

/** The outcome of one ioctl made by a step. */
export interface IoctlResult {
  readonly ret: number;
  /** The struct as sent. */
  readonly sent: Decoded;
  /** The struct after the call. */
  readonly out: Decoded;
  /** The request's name. */
  readonly call: string;
}

const PAGE = 4096n;

/** One run's state. */
export class RunContext {
  /** Variables set by steps. */
  readonly vars = new Map<string, bigint>();
  /** `bind ... as: NAME` → device name. */
  readonly aliases = new Map<string, string>();
  /** Processes by name, in scenario order. */
  readonly procs = new Map<string, ProcState>();
  /** What `snapshot` steps recorded. */
  readonly snapshots: SnapshotRecord[] = [];
  /** What `walk` steps recorded. */
  readonly walks: WalkRecord[] = [];

  constructor(
    readonly scenario: Scenario,
    readonly tracer: Tracer,
  ) {
    for (const spec of scenario.processes) {
      const traced = tracer.createProcess(spec.name, {
        ...(spec.memlockLimitBytes === undefined
          ? {}
          : { memlockLimitBytes: spec.memlockLimitBytes }),
        ...(spec.privileged === undefined ? {} : { privileged: spec.privileged }),
        ...(spec.ipcLock === undefined ? {} : { ipcLock: spec.ipcLock }),
        ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      });
      this.procs.set(spec.name, {
        spec,
        traced,
        iommufd: undefined,
        buffers: new Map(),
        devices: new Map(),
      });
    }
  }

  /** The host. */
  get host(): Host {
    return this.tracer.host;
  }

  /** The process a step runs in. */
  proc(step: Step): ProcState {
    const name = this.text(step, 'process');
    const ps = name === undefined ? this.procs.values().next().value : this.procs.get(name);
    if (ps === undefined) throw new StepFailure(`no process '${name ?? ''}'`);
    return ps;
  }

  // ---- fields ------------------------------------------------------------------------------

  private field(step: Step, name: string): { value: Value; loc: Loc } | undefined {
    return name === step.kind ? step.main : step.fields.get(name);
  }

  /** Evaluate an expression, turning an unset variable into a step failure at `loc`. */
  evaluate(expr: Expr, loc?: Loc): bigint {
    try {
      return evalExpr(expr, (n) => this.vars.get(n));
    } catch (e) {
      if (e instanceof UnsetVariable) throw new StepFailure(e.message, loc);
      throw e;
    }
  }

  /** A number field (the main value when `name` is the step's kind), or undefined when absent. */
  big(step: Step, name: string): bigint | undefined {
    const f = this.field(step, name);
    if (f === undefined) return undefined;
    if (f.value.t !== 'expr') throw new StepFailure(`${name} is not a number`, f.loc);
    return this.evaluate(f.value.expr, f.loc);
  }

  /** A field's value, or a step failure when the step lacks it. */
  private required<T>(step: Step, name: string, value: T | undefined): T {
    if (value === undefined) throw new StepFailure(`${step.kind} needs '${name}'`, step.loc);
    return value;
  }

  /** A required number field. */
  needBig(step: Step, name: string): bigint {
    return this.required(step, name, this.big(step, name));
  }

  /** A number field that must fit a JavaScript number (ids, fds, lengths of small buffers). */
  num(step: Step, name: string): number | undefined {
    const v = this.big(step, name);
    if (v === undefined) return undefined;
    if (v < BigInt(Number.MIN_SAFE_INTEGER) || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new StepFailure(`${name} ${hex(v)} is too large here`, this.field(step, name)?.loc);
    }
    return Number(v);
  }

  /** A required small number field. */
  needNum(step: Step, name: string): number {
    return this.required(step, name, this.num(step, name));
  }

  /** A text field. */
  text(step: Step, name: string): string | undefined {
    const f = this.field(step, name);
    return f?.value.t === 'text' ? f.value.text : undefined;
  }

  /** A boolean field. */
  bool(step: Step, name: string, fallback: boolean): boolean {
    const f = this.field(step, name);
    return f?.value.t === 'bool' ? f.value.bool : fallback;
  }

  /** A bytes field. */
  bytes(step: Step, name: string): Uint8Array | undefined {
    const f = this.field(step, name);
    return f?.value.t === 'bytes' ? f.value.bytes : undefined;
  }

  /** The raw value of a field. */
  value(step: Step, name: string): Value | undefined {
    return this.field(step, name)?.value;
  }

  /** Set a variable. */
  set(name: string, value: bigint | number): void {
    this.vars.set(name, BigInt(value));
  }

  // ---- devices and fds ---------------------------------------------------------------------

  /** The host device a `device` field names (directly or by a bind's `as`). */
  hostDevice(step: Step, field: string): HostDevice {
    const name = this.text(step, field) ?? '';
    const real = this.aliases.get(name) ?? name;
    const d = this.host.device(real);
    if (d === undefined) throw new StepFailure(`no device '${name}'`, this.field(step, field)?.loc);
    return d;
  }

  /** The dev_id of a bound device. */
  devid(ps: ProcState, step: Step, field: string): number {
    return this.deviceState(ps, step, field, 'devid', 'bound', "add a 'bind' step for it");
  }

  /** The cdev fd of an opened device. */
  deviceFd(ps: ProcState, step: Step, field: string): number {
    return this.deviceState(ps, step, field, 'fd', 'open', 'bind it first');
  }

  private deviceState(
    ps: ProcState,
    step: Step,
    field: string,
    key: 'devid' | 'fd',
    state: string,
    hint: string,
  ): number {
    const d = this.hostDevice(step, field);
    const value = ps.devices.get(d.name)?.[key];
    if (value === undefined) {
      throw new StepFailure(
        `device ${d.name} is not ${state} in process ${ps.spec.name} (${hint})`,
        this.field(step, field)?.loc,
      );
    }
    return value;
  }

  /** The /dev/iommu fd a step uses: its `iommufd` field or the process's first. */
  iommufd(ps: ProcState, step: Step, field = 'iommufd'): number {
    const explicit = this.num(step, field);
    if (explicit !== undefined) return explicit;
    if (ps.iommufd === undefined) {
      throw new StepFailure(
        `process ${ps.spec.name} has no /dev/iommu open (add '- open: /dev/iommu' before)`,
        step.loc,
      );
    }
    return ps.iommufd;
  }

  // ---- memory ------------------------------------------------------------------------------

  /** mmap, failing the step when it fails. */
  mmap(ps: ProcState, length: bigint, what: string): bigint {
    const va = ps.traced.mmap(length);
    if (va < 0n) throw this.callFailure(ps, `mmap for ${what}`, Number(va));
    ps.buffers.set(va, length);
    return va;
  }

  /** Place structs in fresh process memory: their address and byte length. */
  placeUserStruct(ps: ProcState, data: UserStruct): { va: bigint; length: number } {
    const s = structs[data.struct];
    const bytes = new Uint8Array(Math.max(s.sizeof * data.entries.length, 1));
    data.entries.forEach((entry, i) => {
      this.encode(data.struct, entry, ps, bytes, i * s.sizeof);
    });
    const va = this.mmap(ps, ((BigInt(bytes.length) + PAGE - 1n) / PAGE) * PAGE, data.struct);
    const rc = ps.traced.writeMemory(va, bytes);
    if (rc < 0) throw this.callFailure(ps, `storing ${data.struct}`, rc);
    return { va, length: s.sizeof * data.entries.length };
  }

  /** The value object `structs[name].encode` takes, from scenario fields. */
  structValue(
    name: StructName,
    args: StructArgs,
    ps: ProcState,
    prefix = '',
  ): Record<string, unknown> {
    const fields = structs[name].fields as Readonly<
      Record<string, { size: number; count?: number }>
    >;
    const out: Record<string, unknown> = {};
    for (const [key, arg] of args) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const info = fields[path];
      const wide = info !== undefined && info.size / (info.count ?? 1) === 8;
      const convert = (v: bigint): bigint | number => (wide ? v : Number(v));
      switch (arg.t) {
        case 'expr':
          out[key] = convert(this.evaluate(arg.expr, arg.loc));
          break;
        case 'list':
          out[key] = arg.items.map((e) => convert(this.evaluate(e, arg.loc)));
          break;
        case 'nested':
          out[key] = this.structValue(name, arg.args, ps, path);
          break;
        case 'user':
          out[key] = this.placeUserStruct(ps, arg.data).va;
          break;
      }
    }
    return out;
  }

  /** Encode scenario fields into `bytes` (range errors become step failures). */
  encode(
    name: StructName,
    args: StructArgs,
    ps: ProcState,
    bytes?: Uint8Array,
    offset = 0,
  ): Uint8Array {
    const value = this.structValue(name, args, ps);
    return this.encodeValue(name, value, bytes, offset);
  }

  /** structs[name].encode with range errors as step failures. */
  encodeValue(
    name: StructName,
    value: Record<string, unknown>,
    bytes?: Uint8Array,
    offset = 0,
  ): Uint8Array {
    const s = structs[name] as unknown as {
      sizeof: number;
      encode(v: Record<string, unknown>, b?: Uint8Array, o?: number): Uint8Array;
    };
    try {
      return s.encode(value, bytes ?? new Uint8Array(s.sizeof), offset);
    } catch (e) {
      throw new StepFailure(`struct ${name}: ${(e as Error).message}`);
    }
  }

  // ---- calls -------------------------------------------------------------------------------

  /**
   * An ioctl with a struct argument built from `value` (the size field
   * defaults to the struct's size); returns the answer and the struct after.
   */
  ioctl(ps: ProcState, fd: number, name: string, value: Record<string, unknown>): IoctlResult {
    const info = requestByName(name);
    if (info?.struct === undefined) throw new StepFailure(`${name} takes no struct`);
    const sizeField = info.sizeField ?? 'size';
    const full = { [sizeField]: info.size, ...value };
    const declared = Number(full[sizeField] ?? info.size);
    const length = Math.max(
      structs[info.struct].sizeof,
      Number.isSafeInteger(declared) ? declared : 0,
    );
    const bytes = this.encodeValue(info.struct, full, new Uint8Array(Math.min(length, 1 << 16)));
    const sent = decodeStruct(info.struct, bytes);
    const ret = ps.traced.ioctl(fd, info.request, bytes);
    return { ret, sent, out: decodeStruct(info.struct, bytes), call: name };
  }

  /** A step failure for a setup call that failed, with the model's reason. */
  callFailure(ps: ProcState, what: string, ret: number): StepFailure {
    const e = ps.traced.proc.lastError();
    return new StepFailure(
      `${what} failed: ${e === null ? `returned ${ret}` : `${e.name}: ${e.reason}`}`,
    );
  }
}
