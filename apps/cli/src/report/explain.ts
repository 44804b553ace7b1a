/**
 * `explain`: every call that failed, with the step that made it, the errno
 * and what it means, and the reason the model recorded for it.
 */
import { errnoMeaning, errnoNumber } from '@iommufd-sim/uapi-types';
import type { StepResult } from '../run/records.js';
import type { TraceEvent } from '../trace/events.js';
import { FdNames, formatEvent } from '../trace/format.js';

/** One failing call. */
export interface ExplainedFailure {
  /** The step that made it, its title and its line in the scenario file. */
  readonly step?: number;
  readonly title?: string;
  readonly line?: number;
  /** The call as strace prints it. */
  readonly call: string;
  readonly errno: string;
  /** What the errno means in general. */
  readonly meaning: string;
  /** Why the model failed this call. */
  readonly reason: string;
  /** true: the scenario expected this failure; false: it did not; undefined: unknown (from a trace). */
  readonly expected?: boolean;
}

/** The failing calls of a run (with its step results) or of a trace (events only). */
export function explainFailures(
  events: readonly TraceEvent[],
  steps?: readonly StepResult[],
): ExplainedFailure[] {
  const out: ExplainedFailure[] = [];
  const fds = new FdNames();
  const titles = new Map<number, { title: string; line: number }>();
  const showPid = events.filter((e) => e.op === 'process').length > 1;
  for (const e of events) {
    const text = formatEvent(e, fds, showPid);
    if (e.op === 'step' && e.step !== undefined)
      titles.set(e.step, { title: e.title, line: e.line });
    if (!('errno' in e) || e.errno === undefined) continue;
    const step = e.step === undefined ? undefined : titles.get(e.step);
    const result = e.step === undefined ? undefined : steps?.find((s) => s.number === e.step);
    const errno = errnoNumber(e.errno);
    out.push({
      ...(e.step === undefined ? {} : { step: e.step }),
      ...(step === undefined ? {} : { title: step.title, line: step.line }),
      call: (text ?? '').split('\n')[0] ?? '',
      errno: e.errno,
      meaning: errno === undefined ? '' : (errnoMeaning(errno) ?? ''),
      reason: e.reason ?? '',
      ...(result === undefined ? {} : { expected: result.status === 'passed' }),
    });
  }
  return out;
}

/** The failures as text. */
export function formatExplanation(failures: readonly ExplainedFailure[], source: string): string {
  if (failures.length === 0) return `No call failed in ${source}.\n`;
  const lines = [
    `${failures.length} failing call${failures.length === 1 ? '' : 's'} in ${source}:`,
  ];
  for (const f of failures) {
    const where =
      f.step === undefined
        ? 'outside any step'
        : `step ${f.step}${f.title === undefined ? '' : ` "${f.title}"`}${f.line === undefined || f.line === 0 ? '' : ` (line ${f.line})`}`;
    const verdict =
      f.expected === undefined
        ? ''
        : f.expected
          ? ' - expected by the scenario'
          : ' - NOT expected: the step failed';
    lines.push(
      '',
      `${where}${verdict}`,
      `  ${f.call}`,
      `  ${f.errno}: ${f.meaning}`,
      `  why: ${f.reason}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
