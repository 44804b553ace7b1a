/**
 * Running a scenario: a fresh host, its processes, then every step in order,
 * each judged against its `expect:`. The first failing step stops the run
 * (unless told to keep going); a group with `skip-on` turns a failure with
 * one of its errnos into a skip of the rest of the group.
 */
import { createHost, type IopfStats, type MemoryStatus } from '@iommufd-sim/iommufd-core';
import { errnoName } from '@iommufd-sim/uapi-types';
import type { Scenario, Step } from '../scenario/types.js';
import type { Trace } from '../trace/events.js';
import { Tracer } from '../trace/recorder.js';
import { RunContext, StepFailure } from './context.js';
import * as device from './handlers-device.js';
import * as iommufd from './handlers-iommufd.js';
import * as processSteps from './handlers-process.js';
import type { StepHandler, StepOutcome } from './outcome.js';
import type { SnapshotRecord, StepResult, WalkRecord } from './records.js';
import { snapshotStep } from './snapshot.js';

const HANDLERS: Readonly<Record<string, StepHandler>> = {
  open: processSteps.openStep,
  close: processSteps.closeStep,
  mmap: processSteps.mmapStep,
  munmap: processSteps.munmapStep,
  memfd: processSteps.memfdStep,
  'write-memory': processSteps.writeMemoryStep,
  'expect-memory': processSteps.expectMemoryStep,
  exit: processSteps.exitStep,
  'expect-errno': processSteps.expectErrnoStep,
  'memory-status': processSteps.memoryStatusStep,
  ioctl: iommufd.ioctlStep,
  ioas: iommufd.ioasStep,
  map: iommufd.mapStep,
  'map-guest-ram': iommufd.mapGuestRamStep,
  unmap: iommufd.unmapStep,
  hwpt: iommufd.hwptStep,
  destroy: iommufd.destroyStep,
  'fault-queue': iommufd.faultQueueStep,
  'hw-info': iommufd.hwInfoStep,
  'dirty-tracking': iommufd.dirtyTrackingStep,
  'dirty-bitmap': iommufd.dirtyBitmapStep,
  viommu: iommufd.viommuStep,
  vdevice: iommufd.vdeviceStep,
  veventq: iommufd.veventqStep,
  invalidate: iommufd.invalidateStep,
  'read-events': device.readEventsStep,
  bind: device.bindStep,
  attach: device.attachStep,
  detach: device.detachStep,
  dma: device.dmaStep,
  'read-faults': device.readFaultsStep,
  respond: device.respondStep,
  poll: device.pollStep,
  walk: device.walkStep,
  snapshot: snapshotStep,
};

/** The step kinds the runner knows (a test checks they match the catalog). */
export const HANDLED_KINDS: readonly string[] = [...Object.keys(HANDLERS), 'group'];

/** Options of {@link runScenario}. */
export interface RunOptions {
  /** Called before each step: how many have run, how many there are, and the step's title. */
  readonly onStep?: (done: number, total: number, title: string) => void;
  /** Run the remaining top-level steps after a failure. */
  readonly keepGoing?: boolean;
}

/** Everything a run produced. */
export interface RunResult {
  readonly scenario: Scenario;
  readonly steps: readonly StepResult[];
  readonly snapshots: readonly SnapshotRecord[];
  readonly walks: readonly WalkRecord[];
  readonly trace: Trace;
  /** After the last step. */
  readonly final: {
    readonly memory: readonly { readonly process: string; readonly status: MemoryStatus }[];
    readonly hostPinnedPages: number;
    readonly iopf: IopfStats;
    /** Exceptions the model caught at its system-call boundary (bugs in the model). */
    readonly internalErrors: number;
  };
  /** Building the host, and the whole run, in milliseconds. */
  readonly setupMs: number;
  readonly totalMs: number;
  readonly counts: {
    readonly passed: number;
    readonly failed: number;
    readonly skipped: number;
    readonly notRun: number;
  };
  /** 0 when every step passed, 1 when one failed, 4 for a bug in the model or the program. */
  readonly exitCode: 0 | 1 | 4;
}

interface Judgement {
  readonly ok: boolean;
  readonly message?: string;
  readonly expected?: string;
}

function describeExpectation(step: Step): string | undefined {
  const e = step.expect;
  if (e === undefined) return undefined;
  switch (e.kind) {
    case 'ok':
      return 'success';
    case 'error':
      return 'a failure';
    case 'value':
      return String(e.value);
    case 'errno':
      return e.name;
    case 'dma':
      return e.status;
  }
}

function judge(
  step: Step,
  out: StepOutcome,
  failure: { errno?: string; reason?: string },
): Judgement {
  const expected = describeExpectation(step);
  const base = expected === undefined ? {} : { expected };
  if (step.spec.expect === 'dma') {
    const want = step.expect?.kind === 'dma' ? step.expect.status : 'done';
    if (out.dmaStatus !== want) {
      return {
        ...base,
        ok: false,
        message: `the DMA ended ${out.dmaStatus ?? '?'}, expected ${want}`,
      };
    }
  } else if (out.main !== undefined) {
    const ret = out.main.ret;
    const e = step.expect ?? { kind: 'ok' };
    const got =
      ret < 0
        ? `${failure.errno ?? errnoName(-ret) ?? ret}${failure.reason === undefined ? '' : ` (${failure.reason})`}`
        : `${ret}`;
    const ok =
      e.kind === 'ok'
        ? ret >= 0
        : e.kind === 'error'
          ? ret < 0
          : e.kind === 'value'
            ? ret === e.value
            : e.kind === 'errno'
              ? ret === -e.errno
              : true;
    if (!ok) {
      return {
        ...base,
        ok: false,
        message: `${out.main.call} returned ${got}, expected ${expected ?? 'success'}`,
      };
    }
    const reason = step.fields.get('reason')?.value;
    if (reason?.t === 'regex' && ret < 0 && !reason.regex.test(failure.reason ?? '')) {
      return {
        ...base,
        ok: false,
        message: `the reason "${failure.reason ?? ''}" does not match /${reason.regex.source}/`,
      };
    }
  }
  if (out.problem !== undefined) return { ...base, ok: false, message: out.problem };
  return { ...base, ok: true };
}

function pathValue(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.split('.')) {
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined;
  }
  return v;
}

class Runner {
  readonly results: StepResult[] = [];
  internal = false;
  private done = 0;

  constructor(
    private readonly ctx: RunContext,
    private readonly options: RunOptions,
  ) {}

  /** Run `steps`; returns how the list ended. */
  runList(
    steps: readonly Step[],
    depth: number,
    skipOn: readonly number[],
  ): 'ok' | 'failed' | 'skipped' {
    let state: 'ok' | 'failed' | 'skipped' = 'ok';
    for (const step of steps) {
      if (state !== 'ok') {
        this.notRun(step, depth, state === 'skipped' ? 'skipped' : 'not-run');
        continue;
      }
      const result = this.runOne(step, depth, skipOn);
      if (result === 'failed' && !(depth === 0 && this.options.keepGoing === true))
        state = 'failed';
      if (result === 'skipped') state = 'skipped';
    }
    return state;
  }

  private notRun(step: Step, depth: number, status: 'skipped' | 'not-run'): void {
    this.done++;
    this.results.push({
      number: step.number,
      kind: step.kind,
      title: this.title(step),
      line: step.loc.line,
      depth,
      status,
      calls: [],
      summary: '',
      details: [],
      message:
        status === 'skipped'
          ? 'skipped with the rest of its group'
          : 'not run: an earlier step failed',
      ms: 0,
    });
    const group = step.fields.get('steps')?.value;
    if (group?.t === 'steps') for (const s of group.steps) this.notRun(s, depth + 1, status);
  }

  private title(step: Step): string {
    return this.ctx.text(step, 'title') ?? step.label;
  }

  private runOne(
    step: Step,
    depth: number,
    skipOn: readonly number[],
  ): 'passed' | 'failed' | 'skipped' {
    const { ctx } = this;
    const title = this.title(step);
    this.options.onStep?.(this.done, ctx.scenario.stepCount, title);
    this.done++;
    ctx.tracer.step = step.number;
    ctx.tracer.emit({ op: 'step', title, kind: step.kind, line: step.loc.line });
    const first = ctx.tracer.events.length;
    const t0 = performance.now();
    const base = { number: step.number, kind: step.kind, title, line: step.loc.line, depth };

    if (step.kind === 'group') {
      const index = this.results.length;
      this.results.push({ ...base, status: 'passed', calls: [], summary: '', details: [], ms: 0 });
      const children = step.fields.get('steps')?.value;
      const skip = step.fields.get('skip-on')?.value;
      const ended = this.runList(
        children?.t === 'steps' ? children.steps : [],
        depth + 1,
        skip?.t === 'errnos' ? skip.errnos : [],
      );
      const skipped = this.results
        .slice(index + 1)
        .find((r) => r.status === 'skipped' && r.message !== undefined);
      const status = ended === 'ok' ? 'passed' : ended;
      this.results[index] = {
        ...base,
        status,
        calls: [],
        summary: status === 'passed' ? 'every step passed' : '',
        details: [],
        ...(status === 'skipped' && skipped?.message !== undefined
          ? { message: skipped.message }
          : {}),
        ...(status === 'failed' ? { message: 'a step of the group failed' } : {}),
        ms: performance.now() - t0,
      };
      ctx.tracer.step = undefined;
      // A skip stays inside its group: the steps after the group run.
      return status === 'failed' ? 'failed' : 'passed';
    }

    let outcome: StepOutcome | undefined;
    let message: string | undefined;
    try {
      const handler = HANDLERS[step.kind];
      if (handler === undefined) throw new StepFailure(`no handler for '${step.kind}'`);
      outcome = handler(step, ctx);
    } catch (e) {
      if (e instanceof StepFailure) {
        message =
          e.loc === undefined || e.loc.line === 0 ? e.message : `${e.message} (line ${e.loc.line})`;
      } else {
        this.internal = true;
        message = `internal error: ${(e as Error).message}`;
      }
    }
    const events = ctx.tracer.events.slice(first);
    ctx.tracer.step = undefined;
    const calls = events.flatMap((e) =>
      e.op === 'ioctl' ? [e.name] : e.op === 'step' || e.op === 'process' ? [] : [e.op],
    );
    const failing = [...events].reverse().find((e) => 'errno' in e && e.errno !== undefined);
    const failure = failing === undefined ? {} : pick(failing);
    const ms = performance.now() - t0;
    if (outcome === undefined) {
      this.results.push({
        ...base,
        status: 'failed',
        calls,
        summary: '',
        details: [],
        ms,
        message: message ?? 'failed',
        ...failure,
      });
      return 'failed';
    }
    const verdict = judge(step, outcome, failure);
    let status: 'passed' | 'failed' | 'skipped' = verdict.ok ? 'passed' : 'failed';
    let note = verdict.message;
    const ret = outcome.main?.ret;
    if (!verdict.ok && ret !== undefined && ret < 0 && skipOn.includes(-ret)) {
      status = 'skipped';
      note = `${failure.errno ?? errnoName(-ret) ?? ret}: ${failure.reason ?? ''} -- the rest of the group is skipped`;
    }
    if (status === 'passed') {
      try {
        this.save(step, outcome);
      } catch (e) {
        status = 'failed';
        note = (e as Error).message;
      }
    }
    this.results.push({
      ...base,
      status,
      calls,
      ...(ret === undefined ? {} : { ret }),
      ...(ret !== undefined && ret < 0 ? failure : {}),
      ...(verdict.expected === undefined ? {} : { expected: verdict.expected }),
      summary: outcome.summary,
      details: outcome.details ?? [],
      ...(note === undefined ? {} : { message: note }),
      ms,
    });
    return status;
  }

  private save(step: Step, outcome: StepOutcome): void {
    const save = step.fields.get('save')?.value;
    if (save?.t !== 'save') return;
    for (const [name, path] of save.save) {
      const v = pathValue(outcome.output, path);
      if (typeof v !== 'number' && typeof v !== 'bigint') {
        throw new StepFailure(`save: the step has no output field '${path}'`);
      }
      this.ctx.set(name, v);
    }
  }
}

function pick(event: object): { errno?: string; reason?: string } {
  const f = event as { errno?: string; reason?: string };
  return {
    ...(f.errno === undefined ? {} : { errno: f.errno }),
    ...(f.reason === undefined ? {} : { reason: f.reason }),
  };
}

/** Run a validated scenario on a fresh host. Never throws for what the model answers. */
export function runScenario(scenario: Scenario, options: RunOptions = {}): RunResult {
  const t0 = performance.now();
  const host = createHost(scenario.host);
  const tracer = new Tracer(host, scenario.host, scenario.name);
  const ctx = new RunContext(scenario, tracer);
  const setupMs = performance.now() - t0;
  const runner = new Runner(ctx, options);
  runner.runList(scenario.steps, 0, []);
  options.onStep?.(scenario.stepCount, scenario.stepCount, 'done');
  const steps = runner.results;
  const count = (s: StepResult['status']) =>
    steps.filter((r) => r.status === s && r.kind !== 'group').length;
  const counts = {
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    notRun: count('not-run'),
  };
  const internal = runner.internal || host.internalErrors > 0;
  return {
    scenario,
    steps,
    snapshots: ctx.snapshots,
    walks: ctx.walks,
    trace: tracer.trace(),
    final: {
      memory: [...ctx.procs.values()].map((ps) => ({
        process: ps.spec.name,
        status: ps.traced.proc.status(),
      })),
      hostPinnedPages: host.pinnedPages(),
      iopf: host.iopf.stats(),
      internalErrors: host.internalErrors,
    },
    setupMs,
    totalMs: performance.now() - t0,
    counts,
    exitCode: internal ? 4 : counts.failed > 0 ? 1 : 0,
  };
}
