/** A scenario file after validation: what the runner executes. */
import type { HostConfig } from '@iommufd-sim/iommufd-core';
import type { StructName } from '@iommufd-sim/uapi-types';
import type { RequestInfo } from '../uapi/requests.js';
import type { StepSpec } from './catalog.js';
import type { Expr } from './expr.js';

/** A place in the file (1-based). */
export interface Loc {
  readonly line: number;
  readonly col: number;
}

/** What a step's `expect:` asks. */
export type Expectation =
  | { readonly kind: 'ok' }
  | { readonly kind: 'error' }
  | { readonly kind: 'value'; readonly value: number }
  | { readonly kind: 'errno'; readonly errno: number; readonly name: string }
  | { readonly kind: 'dma'; readonly status: 'done' | 'page-request' | 'fault' };

/** A struct field's value in a scenario (flags and enum names already resolved). */
export type StructArg =
  | { readonly t: 'expr'; readonly expr: Expr; readonly loc: Loc }
  | { readonly t: 'list'; readonly items: readonly Expr[]; readonly loc: Loc }
  | { readonly t: 'nested'; readonly args: StructArgs; readonly loc: Loc }
  | { readonly t: 'user'; readonly data: UserStruct; readonly loc: Loc };

/** Struct fields by name. */
export type StructArgs = ReadonlyMap<string, StructArg>;

/** A struct placed in process memory and passed by address: one, or an array of entries. */
export interface UserStruct {
  readonly struct: StructName;
  readonly entries: readonly StructArgs[];
}

/** A field's value, by the field's type. */
export type Value =
  | { readonly t: 'expr'; readonly expr: Expr }
  | { readonly t: 'exprs'; readonly exprs: readonly Expr[] }
  | { readonly t: 'text'; readonly text: string }
  | { readonly t: 'bool'; readonly bool: boolean }
  | { readonly t: 'bytes'; readonly bytes: Uint8Array }
  | { readonly t: 'errnos'; readonly errnos: readonly number[] }
  | { readonly t: 'regex'; readonly regex: RegExp }
  | { readonly t: 'struct'; readonly data: UserStruct }
  | { readonly t: 'save'; readonly save: readonly (readonly [string, string])[] }
  | { readonly t: 'steps'; readonly steps: readonly Step[] }
  | { readonly t: 'none' };

/** A field with where it was written. */
export interface Field {
  readonly value: Value;
  readonly loc: Loc;
}

/** One step. */
export interface Step {
  readonly kind: string;
  readonly spec: StepSpec;
  /** 1-based, in document order (a group's steps follow it). */
  readonly number: number;
  readonly loc: Loc;
  /** The value of the kind key. */
  readonly main: Field;
  /** `kind main-as-written` (`map $ioas`), the default title. */
  readonly label: string;
  /** The other fields (common ones included) by name. */
  readonly fields: ReadonlyMap<string, Field>;
  readonly expect?: Expectation;
  /** An ioctl step's request and struct fields. */
  readonly request?: RequestInfo;
  readonly args?: StructArgs;
}

/** A process of the scenario. */
export interface ProcessSpec {
  readonly name: string;
  readonly memlockLimitBytes?: bigint;
  readonly privileged?: boolean;
  readonly ipcLock?: boolean;
  readonly uid?: number;
}

/** A validated scenario. */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Where it came from (a path, or `(built-in)`). */
  readonly file: string;
  readonly host: HostConfig;
  readonly processes: readonly ProcessSpec[];
  readonly steps: readonly Step[];
  /** Steps including those inside groups. */
  readonly stepCount: number;
}
