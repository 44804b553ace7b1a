/** What a step handler reports back to the runner. */
import type { Step } from '../scenario/types.js';
import type { Decoded } from '../uapi/struct-text.js';
import type { RunContext } from './context.js';

/** The result of running one step's calls. */
export interface StepOutcome {
  /** The call `expect:` checks, and its return value. */
  readonly main?: { readonly call: string; readonly ret: number };
  /** A DMA step's outcome ('done', 'page-request', 'fault'). */
  readonly dmaStatus?: string;
  /** The main call's struct after the call: what `save:` reads. */
  readonly output?: Decoded;
  /** What came out, in a few words. */
  readonly summary: string;
  /** More lines for the report. */
  readonly details?: readonly string[];
  /** A check of the step failed (memory contents, dirty pages, ...). */
  readonly problem?: string;
}

/** Runs one kind of step. */
export type StepHandler = (step: Step, ctx: RunContext) => StepOutcome;
