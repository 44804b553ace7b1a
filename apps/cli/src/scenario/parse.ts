/**
 * Reading a scenario file: YAML through `yaml`'s parseDocument with a
 * LineCounter, then every key and value checked against the step catalog, so
 * each problem names its line and column and what is wrong. All problems of a
 * file are reported at once.
 */

import type { IommuConfig } from '@iommufd-sim/hw-models';
import { createHost, type HostConfig, type HostDeviceConfig } from '@iommufd-sim/iommufd-core';
import { errnoNumber, type StructName, structs } from '@iommufd-sim/uapi-types';
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type YAMLMap,
  type Node as YamlNode,
} from 'yaml';
import { enumConstant, enumInfo, fieldEnum } from '../uapi/field-enums.js';
import { requestByName, requestNames } from '../uapi/requests.js';
import { isStructName } from '../uapi/struct-text.js';
import { fromHex } from '../util/hex.js';
import { closest } from '../util/suggest.js';
import {
  COMMON_FIELDS,
  DEVICE_FIELDS,
  EXPECT_FIELDS,
  type FieldSpec,
  HOST_FIELDS,
  IOMMU_FIELDS,
  PROCESS_FIELDS,
  SAVE_FIELD,
  STEP_BY_KIND,
  STEPS,
  type StepSpec,
  TOP_FIELDS,
} from './catalog.js';
import { type Expr, evalExpr, exprVariables, parseExpr, UAPI_CONSTANTS, VAR_NAME } from './expr.js';
import type {
  Expectation,
  Field,
  Loc,
  ProcessSpec,
  Scenario,
  Step,
  StructArg,
  StructArgs,
  UserStruct,
  Value,
} from './types.js';

/** One thing wrong with a scenario file. */
export interface Problem {
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** A scenario file that cannot be run: every problem found, each with its place. */
export class ScenarioError extends Error {
  constructor(
    /** The file. */
    readonly file: string,
    /** What is wrong, in file order. */
    readonly problems: readonly Problem[],
  ) {
    super(
      problems
        .map((p) =>
          p.line > 0 ? `${file}:${p.line}:${p.col}: ${p.message}` : `${file}: ${p.message}`,
        )
        .join('\n'),
    );
    this.name = 'ScenarioError';
  }
}

/** Options of {@link parseScenario}. */
export interface ParseOptions {
  /** The host of a file without `host:` (default: one VT-d with one device). */
  readonly defaultHost?: () => HostConfig;
}

const FALLBACK_HOST: HostConfig = {
  iommus: [{ name: 'vtd0', model: 'vtd' }],
  devices: [{ name: '0000:01:00.0', iommu: 'vtd0' }],
};

const MAX_PROBLEMS = 25;

type Entry = { readonly key: string; readonly keyNode: YamlNode; readonly node: YamlNode | null };

class Reader {
  readonly problems: Problem[] = [];
  /** Variables some earlier step sets. */
  readonly defined = new Set<string>();
  /** Device names and bind aliases. */
  readonly devices = new Set<string>();
  readonly processes = new Set<string>();
  stepNumber = 0;

  constructor(private readonly lines: LineCounter) {}

  loc(node: YamlNode | null | undefined): Loc {
    const offset = node?.range?.[0];
    if (offset === undefined) return { line: 0, col: 0 };
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  problem(node: YamlNode | null | undefined, message: string): undefined {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ ...this.loc(node), message });
    return undefined;
  }

  /** The entries of a map, checked against `allowed` (unknown keys reported unless `rest` takes them). */
  entries(
    map: YAMLMap,
    allowed: Readonly<Record<string, FieldSpec>>,
    where: string,
    rest?: (entry: Entry) => boolean,
  ): Map<string, Entry> {
    const out = new Map<string, Entry>();
    for (const pair of map.items) {
      const keyNode = pair.key as YamlNode;
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        this.problem(keyNode, `${where}: keys must be names`);
        continue;
      }
      const key = keyNode.value;
      const entry: Entry = { key, keyNode, node: (pair.value as YamlNode | null) ?? null };
      if (Object.hasOwn(allowed, key)) out.set(key, entry);
      else if (rest === undefined || !rest(entry)) {
        const names = Object.keys(allowed);
        const guess = hint(key, names);
        this.problem(
          keyNode,
          `${where}: unknown field '${key}'${guess === '' ? ` (fields: ${names.join(', ')})` : guess}`,
        );
      }
    }
    for (const [name, spec] of Object.entries(allowed)) {
      if (spec.required === true && !out.has(name)) {
        this.problem(map, `${where}: missing required field '${name}' (${spec.doc})`);
      }
    }
    return out;
  }

  // ---- values ------------------------------------------------------------------------------

  expr(node: YamlNode | null, what: string): Expr | undefined {
    if (!isScalar(node)) return this.problem(node, `${what}: expected a number`);
    const v = node.value;
    if (typeof v !== 'string' && typeof v !== 'bigint' && typeof v !== 'number') {
      return this.problem(node, `${what}: expected a number, got ${describe(v)}`);
    }
    const e = parseExpr(v);
    if (typeof e === 'string') return this.problem(node, `${what}: bad number: ${e}`);
    for (const name of exprVariables(e)) {
      if (!this.defined.has(name)) {
        const known = [...this.defined];
        this.problem(
          node,
          `${what}: $${name} is not set by any earlier step${hint(name, known, '$')}`,
        );
        return undefined;
      }
    }
    return e;
  }

  /** A number known when the file is read (host and process fields). */
  constant(node: YamlNode | null, what: string): bigint | undefined {
    const e = this.expr(node, what);
    return e === undefined ? undefined : evalExpr(e, () => undefined);
  }

  smallConstant(node: YamlNode | null, what: string): number | undefined {
    const v = this.constant(node, what);
    if (v === undefined) return undefined;
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      return this.problem(node, `${what}: ${v} is out of range`);
    }
    return Number(v);
  }

  text(node: YamlNode | null, what: string): string | undefined {
    if (!isScalar(node)) return this.problem(node, `${what}: expected text`);
    const v = node.value;
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'bigint') return String(v);
    return this.problem(node, `${what}: expected text, got ${describe(v)}`);
  }

  bool(node: YamlNode | null, what: string): boolean | undefined {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    return this.problem(node, `${what}: expected true or false`);
  }

  bytes(node: YamlNode | null, what: string): Uint8Array | undefined {
    const t = this.text(node, what);
    if (t === undefined) return undefined;
    if (t.startsWith('text:')) return new TextEncoder().encode(t.slice(5));
    const b = fromHex(t);
    if (b === undefined) {
      return this.problem(node, `${what}: expected hex bytes ("ca fe 00") or "text:..."`);
    }
    return b;
  }

  symbolOrExpr(node: YamlNode | null, enumName: string, what: string): Expr | undefined {
    const info = enumInfo(enumName);
    if (info !== undefined && isScalar(node) && typeof node.value === 'string') {
      const word = node.value.trim();
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(word) && !UAPI_CONSTANTS.has(word)) {
        const v = enumConstant(info, word);
        if (typeof v === 'string') return this.problem(node, `${what}: ${v}`);
        return { op: 'num', value: BigInt(v) };
      }
    }
    return this.expr(node, what);
  }

  flags(node: YamlNode | null, enumName: string, what: string): Expr | undefined {
    if (!isSeq(node)) return this.symbolOrExpr(node, enumName, what);
    let mask = 0n;
    for (const item of node.items as YamlNode[]) {
      const e = this.symbolOrExpr(item, enumName, what);
      if (e === undefined) return undefined;
      if (e.op !== 'num') return this.problem(item, `${what}: list items must be constants`);
      mask |= e.value;
    }
    return { op: 'num', value: mask };
  }

  varName(node: YamlNode | null, what: string): string | undefined {
    const t = this.text(node, what);
    if (t === undefined) return undefined;
    if (t.startsWith('$')) return this.problem(node, `${what}: write the name without '$'`);
    if (!VAR_NAME.test(t)) return this.problem(node, `${what}: '${t}' is not a variable name`);
    return t;
  }

  errno(node: YamlNode | null, what: string): number | undefined {
    const t = this.text(node, what);
    if (t === undefined) return undefined;
    const n = errnoNumber(t);
    if (n === undefined) return this.problem(node, `${what}: '${t}' is not an errno name`);
    return n;
  }

  value(spec: FieldSpec, node: YamlNode | null, what: string): Value | undefined {
    switch (spec.type) {
      case 'expr': {
        const expr = this.expr(node, what);
        return expr && { t: 'expr', expr };
      }
      case 'exprs': {
        if (!isSeq(node)) return this.problem(node, `${what}: expected a list of numbers`);
        const exprs: Expr[] = [];
        for (const item of node.items as YamlNode[]) {
          const e = this.expr(item, what);
          if (e === undefined) return undefined;
          exprs.push(e);
        }
        return { t: 'exprs', exprs };
      }
      case 'text':
      case 'request': {
        const text = this.text(node, what);
        return text === undefined ? undefined : { t: 'text', text };
      }
      case 'choice': {
        const text = this.text(node, what);
        if (text === undefined) return undefined;
        const choices = spec.choices ?? [];
        if (!choices.includes(text)) {
          return this.problem(node, `${what}: '${text}' is not one of ${choices.join(', ')}`);
        }
        return { t: 'text', text };
      }
      case 'device': {
        const text = this.text(node, what);
        if (text === undefined) return undefined;
        if (!this.devices.has(text)) {
          return this.problem(
            node,
            `${what}: no device '${text}' (the host has ${[...this.devices].join(', ') || 'none'})`,
          );
        }
        return { t: 'text', text };
      }
      case 'var': {
        const text = this.varName(node, what);
        return text === undefined ? undefined : { t: 'text', text };
      }
      case 'bool': {
        const bool = this.bool(node, what);
        return bool === undefined ? undefined : { t: 'bool', bool };
      }
      case 'bytes': {
        const bytes = this.bytes(node, what);
        return bytes && { t: 'bytes', bytes };
      }
      case 'errno': {
        const n = this.errno(node, what);
        return n === undefined ? undefined : { t: 'expr', expr: { op: 'num', value: BigInt(n) } };
      }
      case 'errnos': {
        const items = isSeq(node) ? (node.items as YamlNode[]) : [node];
        const errnos: number[] = [];
        for (const item of items) {
          const n = this.errno(item, what);
          if (n === undefined) return undefined;
          errnos.push(n);
        }
        return { t: 'errnos', errnos };
      }
      case 'regex': {
        const text = this.text(node, what);
        if (text === undefined) return undefined;
        try {
          return { t: 'regex', regex: new RegExp(text) };
        } catch (e) {
          return this.problem(node, `${what}: bad regular expression: ${(e as Error).message}`);
        }
      }
      case 'symbol': {
        const expr = this.symbolOrExpr(node, spec.enum ?? '', what);
        return expr && { t: 'expr', expr };
      }
      case 'flags': {
        const expr = this.flags(node, spec.enum ?? '', what);
        return expr && { t: 'expr', expr };
      }
      case 'struct': {
        const data = this.userStruct(node, what);
        return data && { t: 'struct', data };
      }
      case 'none':
        if (node !== null && !(isScalar(node) && node.value === null)) {
          return this.problem(node, `${what}: takes no value`);
        }
        return { t: 'none' };
      case 'save':
      case 'steps':
        return this.problem(node, `${what}: not supported here`);
    }
  }

  // ---- structs -----------------------------------------------------------------------------

  /** `{struct: NAME, field: value, ...}` or `{struct: NAME, entries: [{...}, ...]}`. */
  userStruct(node: YamlNode | null, what: string): UserStruct | undefined {
    if (!isMap(node)) return this.problem(node, `${what}: expected {struct: NAME, ...fields}`);
    const structPair = node.items.find((p) => isScalar(p.key) && p.key.value === 'struct');
    if (structPair === undefined) return this.problem(node, `${what}: missing 'struct: NAME'`);
    const name = this.text((structPair.value as YamlNode | null) ?? null, `${what}.struct`);
    if (name === undefined) return undefined;
    if (!isStructName(name)) {
      return this.problem(
        structPair.value as YamlNode,
        `${what}: no struct '${name}'${hint(name, Object.keys(structs))}`,
      );
    }
    const entriesPair = node.items.find((p) => isScalar(p.key) && p.key.value === 'entries');
    if (entriesPair !== undefined) {
      const list = entriesPair.value as YamlNode | null;
      if (!isSeq(list)) return this.problem(list, `${what}.entries: expected a list of structs`);
      const entries: StructArgs[] = [];
      for (const item of list.items as YamlNode[]) {
        if (!isMap(item)) return this.problem(item, `${what}.entries: expected a map of fields`);
        entries.push(this.structArgs(name, item, '', `${what} ${name}`, new Set()));
      }
      return { struct: name, entries };
    }
    return {
      struct: name,
      entries: [this.structArgs(name, node, '', `${what} ${name}`, new Set(['struct']))],
    };
  }

  /** The fields of `structName` in `map` (under `prefix` for a union member), `skip` excepted. */
  structArgs(
    structName: StructName,
    map: YAMLMap,
    prefix: string,
    where: string,
    skip: ReadonlySet<string>,
  ): StructArgs {
    const fields = structs[structName].fields as Readonly<
      Record<string, { type: string; size: number; count?: number }>
    >;
    const members = Object.keys(fields).filter((path) => {
      if (prefix === '') return !path.includes('.');
      return path.startsWith(`${prefix}.`) && !path.slice(prefix.length + 1).includes('.');
    });
    const out = new Map<string, StructArg>();
    for (const pair of map.items) {
      const keyNode = pair.key as YamlNode;
      const key = isScalar(keyNode) ? String(keyNode.value) : '';
      if (skip.has(key)) continue;
      const path = prefix === '' ? key : `${prefix}.${key}`;
      const info = fields[path];
      const node = (pair.value as YamlNode | null) ?? null;
      const what = `${where}: ${path}`;
      if (info === undefined || !members.includes(path)) {
        const names = members.map((m) => m.slice(prefix === '' ? 0 : prefix.length + 1));
        this.problem(
          keyNode,
          `${where}: no field '${key}' in ${prefix === '' ? `struct ${structName}` : `${structName}.${prefix}`}${hint(key, names)} (fields: ${names.join(', ')})`,
        );
        continue;
      }
      const loc = this.loc(node ?? keyNode);
      if (info.type === 'struct') {
        if (!isMap(node)) {
          this.problem(node ?? keyNode, `${what}: expected a map of its fields`);
          continue;
        }
        out.set(key, {
          t: 'nested',
          args: this.structArgs(structName, node, path, where, new Set()),
          loc,
        });
      } else if (info.count !== undefined) {
        if (!isSeq(node)) {
          this.problem(node ?? keyNode, `${what}: expected a list of ${info.count} numbers`);
          continue;
        }
        const items: Expr[] = [];
        for (const item of node.items as YamlNode[]) {
          const e = this.expr(item, what);
          if (e !== undefined) items.push(e);
        }
        if (items.length > info.count) {
          this.problem(node, `${what}: at most ${info.count} values`);
          continue;
        }
        out.set(key, { t: 'list', items, loc });
      } else if (isMap(node)) {
        if (info.size !== 8) {
          this.problem(node, `${what}: only a 64-bit (pointer) field can take a struct`);
          continue;
        }
        const data = this.userStruct(node, what);
        if (data !== undefined) out.set(key, { t: 'user', data, loc });
      } else {
        const info2 = fieldEnum(structName, path);
        const expr =
          info2 === undefined ? this.expr(node, what) : this.flags(node, info2.name, what);
        if (expr !== undefined) out.set(key, { t: 'expr', expr, loc });
      }
    }
    return out;
  }

  // ---- steps -------------------------------------------------------------------------------

  steps(node: YamlNode | null, where: string): Step[] {
    if (!isSeq(node)) {
      this.problem(node, `${where}: expected a list of steps`);
      return [];
    }
    const out: Step[] = [];
    for (const item of node.items as YamlNode[]) {
      const step = this.step(item);
      if (step !== undefined) out.push(step);
    }
    return out;
  }

  step(node: YamlNode): Step | undefined {
    const number = ++this.stepNumber;
    const where = `step ${number}`;
    if (!isMap(node)) return this.problem(node, `${where}: expected a map such as '- map: $ioas'`);
    const keyName = (p: { key: unknown }): string => String((p.key as { value: unknown }).value);
    const candidates = node.items.filter(
      (p) => isScalar(p.key) && STEP_BY_KIND.has(String(p.key.value)),
    );
    // A field may share its name with a step kind (`viommu` has a `hwpt` field):
    // the kind is the key whose step takes every other candidate as a field.
    const kinds = candidates.filter((k) => {
      const fields = (STEP_BY_KIND.get(keyName(k)) as StepSpec).fields;
      return candidates.every((o) => o === k || Object.hasOwn(fields, keyName(o)));
    });
    if (candidates.length === 0) {
      const first = node.items[0]?.key as YamlNode | undefined;
      const word = isScalar(first) ? String(first.value) : '';
      return this.problem(
        first ?? node,
        `${where}: unknown step '${word}'${hint(
          word,
          STEPS.map((s) => s.kind),
        )} (steps: ${STEPS.map((s) => s.kind).join(', ')})`,
      );
    }
    if (kinds.length !== 1) {
      return this.problem(
        candidates[1]?.key as YamlNode,
        `${where}: a step has one kind, this one has ${candidates.map((k) => `'${keyName(k)}'`).join(' and ')}`,
      );
    }
    const kindPair = kinds[0] as (typeof kinds)[number];
    const kind = String((kindPair.key as { value: unknown }).value);
    const spec = STEP_BY_KIND.get(kind) as StepSpec;
    const stepWhere = `${where} (${kind})`;
    const mainNode = (kindPair.value as YamlNode | null) ?? null;
    const request = kind === 'ioctl' ? this.request(mainNode, stepWhere) : undefined;

    const allowed: Record<string, FieldSpec> = { ...COMMON_FIELDS, ...spec.fields };
    if (spec.expect !== 'none') Object.assign(allowed, EXPECT_FIELDS);
    if (spec.output !== undefined) allowed.save = SAVE_FIELD;
    const argNodes: { key: string; keyNode: YamlNode }[] = [];
    const entries = this.entries(node, { ...allowed, [kind]: spec.main }, stepWhere, (e) => {
      if (kind !== 'ioctl') return false;
      argNodes.push(e);
      return true;
    });
    entries.delete(kind);
    const loc = this.loc(node);

    // The main value first, then the fields, in the order a reader expects.
    const main =
      spec.main.type === 'none' && mainNode === null
        ? ({ t: 'none' } as Value)
        : spec.main.type === 'request'
          ? request && ({ t: 'text', text: request.name } as Value)
          : this.value(spec.main, mainNode, `${stepWhere}: ${kind}`);
    const fields = new Map<string, Field>();
    let expect: Expectation | undefined;
    let save: [string, string][] | undefined;
    for (const [name, e] of entries) {
      const what = `${stepWhere}: ${name}`;
      if (name === 'expect') {
        expect = this.expectation(spec, e.node, what);
        continue;
      }
      if (name === 'save') {
        save = this.save(e.node, spec, request?.struct, what);
        if (save !== undefined) {
          fields.set(name, { value: { t: 'save', save }, loc: this.loc(e.node) });
        }
        continue;
      }
      if (name === 'process') {
        const p = this.text(e.node, what);
        if (p !== undefined && !this.processes.has(p)) {
          this.problem(
            e.node,
            `${what}: no process '${p}' (processes: ${[...this.processes].join(', ')})`,
          );
        }
      }
      if (name === 'steps' && kind === 'group') {
        const steps = this.steps(e.node, `${stepWhere}: steps`);
        fields.set(name, { value: { t: 'steps', steps }, loc: this.loc(e.node) });
        continue;
      }
      const v = this.value(allowed[name] as FieldSpec, e.node, what);
      if (v !== undefined) fields.set(name, { value: v, loc: this.loc(e.node ?? e.keyNode) });
    }
    let args: StructArgs | undefined;
    if (request !== undefined) {
      if (request.struct !== undefined) {
        const skip = new Set([...Object.keys(allowed), kind]);
        args = this.structArgs(request.struct, node, '', stepWhere, skip);
      } else if (argNodes.length > 0) {
        const first = argNodes[0] as { keyNode: YamlNode };
        this.problem(first.keyNode, `${stepWhere}: ${request.name} takes no struct (use 'arg')`);
      }
    }
    if (main === undefined) return undefined;
    this.define(kind, main, fields, save);
    return {
      kind,
      spec,
      number,
      loc,
      main: { value: main, loc: this.loc(mainNode ?? node) },
      label:
        isScalar(mainNode) && mainNode.value !== null
          ? `${kind} ${String(mainNode.source ?? mainNode.value)}`
          : kind,
      fields,
      ...(expect === undefined ? {} : { expect }),
      ...(request === undefined ? {} : { request }),
      ...(args === undefined ? {} : { args }),
    };
  }

  request(node: YamlNode | null, where: string) {
    const name = this.text(node, `${where}: ioctl`);
    if (name === undefined) return undefined;
    const info = requestByName(name);
    if (info === undefined) {
      return this.problem(node, `${where}: no ioctl named '${name}'${hint(name, requestNames())}`);
    }
    return info;
  }

  expectation(spec: StepSpec, node: YamlNode | null, what: string): Expectation | undefined {
    if (!isScalar(node)) return this.problem(node, `${what}: expected a value`);
    const v = node.value;
    if (spec.expect === 'dma') {
      if (v === 'done' || v === 'page-request' || v === 'fault') return { kind: 'dma', status: v };
      return this.problem(node, `${what}: a DMA ends 'done', 'page-request' or 'fault'`);
    }
    if (typeof v === 'bigint' || typeof v === 'number') {
      return { kind: 'value', value: Number(v) };
    }
    if (v === 'ok') return { kind: 'ok' };
    if (v === 'error') return { kind: 'error' };
    if (typeof v === 'string') {
      const errno = errnoNumber(v);
      if (errno !== undefined) return { kind: 'errno', errno, name: v };
    }
    return this.problem(
      node,
      `${what}: '${String(v)}' is not 0, a number, ok, error or an errno name (EEXIST, EINVAL, ...)`,
    );
  }

  save(
    node: YamlNode | null,
    spec: StepSpec,
    requestStruct: StructName | undefined,
    what: string,
  ): [string, string][] | undefined {
    if (!isMap(node)) return this.problem(node, `${what}: expected {variable: field, ...}`);
    const struct = requestStruct ?? (spec.output as StructName | undefined);
    const fields =
      struct !== undefined && isStructName(struct) ? Object.keys(structs[struct].fields) : [];
    const out: [string, string][] = [];
    for (const pair of node.items) {
      const name = this.varName(pair.key as YamlNode, what);
      const field = this.text((pair.value as YamlNode | null) ?? null, what);
      if (name === undefined || field === undefined) continue;
      if (!fields.includes(field)) {
        this.problem(
          pair.value as YamlNode,
          `${what}: no field '${field}' in struct ${struct ?? '?'}${hint(field, fields)}`,
        );
        continue;
      }
      out.push([name, field]);
    }
    return out;
  }

  /** Record the variables and device names a step sets, for the steps after it. */
  define(
    kind: string,
    main: Value,
    fields: ReadonlyMap<string, Field>,
    save: readonly [string, string][] | undefined,
  ): void {
    const spec = STEP_BY_KIND.get(kind) as StepSpec;
    const names: string[] = [];
    if (spec.main.type === 'var' && main.t === 'text') names.push(main.text);
    const as = fields.get('as')?.value;
    if (as?.t === 'text') names.push(as.text);
    if (kind === 'map-guest-ram' && as === undefined) names.push('ram');
    if (kind === 'bind' && as?.t === 'text') this.devices.add(as.text);
    for (const name of [...names]) {
      for (const suffix of spec.defineSuffixes ?? []) names.push(name + suffix);
    }
    for (const [name] of save ?? []) names.push(name);
    for (const n of names) this.defined.add(n);
  }

  // ---- host and processes ------------------------------------------------------------------

  host(node: YamlNode | null): HostConfig | undefined {
    if (!isMap(node)) return this.problem(node, 'host: expected a map with iommus and devices');
    const e = this.entries(node, HOST_FIELDS, 'host');
    const iommus: IommuConfig[] = [];
    const iommuList = e.get('iommus')?.node ?? null;
    if (iommuList !== null && !isSeq(iommuList))
      this.problem(iommuList, 'host.iommus: expected a list');
    for (const item of isSeq(iommuList) ? (iommuList.items as YamlNode[]) : []) {
      const c = this.iommu(item);
      if (c === undefined) continue;
      if (iommus.some((i) => i.name === c.name))
        this.problem(item, `host.iommus: two IOMMUs are named '${c.name}'`);
      iommus.push(c);
    }
    const devices: HostDeviceConfig[] = [];
    const deviceList = e.get('devices')?.node ?? null;
    if (deviceList !== null && !isSeq(deviceList))
      this.problem(deviceList, 'host.devices: expected a list');
    for (const item of isSeq(deviceList) ? (deviceList.items as YamlNode[]) : []) {
      const d = this.device(item, iommus);
      if (d === undefined) continue;
      if (devices.some((x) => x.name === d.name))
        this.problem(item, `host.devices: two devices are named '${d.name}'`);
      devices.push(d);
    }
    const selftestNode = e.get('selftest')?.node;
    const selftest = selftestNode === undefined ? false : this.bool(selftestNode, 'host.selftest');
    const config: HostConfig = {
      ...(iommus.length > 0 ? { iommus } : {}),
      devices,
      ...(selftest === true ? { selftest } : {}),
    };
    if (this.problems.length === 0) {
      try {
        createHost(config);
      } catch (err) {
        this.problem(node, `host: ${(err as Error).message}`);
      }
    }
    return config;
  }

  iommu(node: YamlNode): IommuConfig | undefined {
    if (!isMap(node)) return this.problem(node, 'host.iommus: each IOMMU is a map {name, model}');
    const e = this.entries(node, IOMMU_FIELDS, 'host.iommus entry');
    const name = e.has('name') ? this.text(e.get('name')?.node ?? null, 'name') : undefined;
    const modelValue = e.has('model')
      ? this.value(
          IOMMU_FIELDS.model as FieldSpec,
          e.get('model')?.node ?? null,
          'host.iommus: model',
        )
      : undefined;
    if (name === undefined || modelValue?.t !== 'text') return undefined;
    const c: Record<string, unknown> = { name, model: modelValue.text };
    const num = (key: string, prop: string) => {
      const n = e.get(key);
      if (n !== undefined) c[prop] = this.smallConstant(n.node, `host.iommus ${name}: ${key}`);
    };
    const flag = (key: string, prop: string) => {
      const n = e.get(key);
      if (n !== undefined) c[prop] = this.bool(n.node, `host.iommus ${name}: ${key}`);
    };
    num('input-bits', 'inputBits');
    num('output-bits', 'outputBits');
    num('pasid-bits', 'pasidBits');
    flag('nesting', 'nesting');
    flag('dirty-tracking', 'dirtyTracking');
    flag('ats', 'ats');
    flag('pri', 'pri');
    const sizes = this.constantList(e.get('page-sizes'), `host.iommus ${name}: page-sizes`);
    if (sizes !== undefined) c.pageSizes = sizes;
    return c as unknown as IommuConfig;
  }

  /** A list of numbers known when the file is read (page sizes, stream ids). */
  constantList(entry: Entry | undefined, what: string): number[] | undefined {
    if (entry === undefined) return undefined;
    const v = this.value({ type: 'exprs', doc: '' }, entry.node, what);
    return v?.t === 'exprs' ? v.exprs.map((x) => Number(evalExpr(x, () => undefined))) : undefined;
  }

  device(node: YamlNode, iommus: readonly IommuConfig[]): HostDeviceConfig | undefined {
    if (!isMap(node)) return this.problem(node, 'host.devices: each device is a map {name, iommu}');
    const e = this.entries(node, DEVICE_FIELDS, 'host.devices entry');
    const name = e.has('name') ? this.text(e.get('name')?.node ?? null, 'name') : undefined;
    const iommuNode = e.get('iommu')?.node ?? null;
    const iommu = e.has('iommu') ? this.text(iommuNode, 'iommu') : undefined;
    if (name === undefined || iommu === undefined) return undefined;
    if (!iommus.some((i) => i.name === iommu)) {
      this.problem(
        iommuNode,
        `host.devices ${name}: no IOMMU '${iommu}' (IOMMUs: ${iommus.map((i) => i.name).join(', ') || 'none'})`,
      );
    }
    this.devices.add(name);
    const c: Record<string, unknown> = { name, iommu };
    for (const [key, prop] of [
      ['rid', 'rid'],
      ['pasid-bits', 'pasidBits'],
    ] as const) {
      const n = e.get(key);
      if (n !== undefined) c[prop] = this.smallConstant(n.node, `host.devices ${name}: ${key}`);
    }
    for (const [key, prop] of [
      ['ats', 'ats'],
      ['pri', 'pri'],
      ['stall', 'stall'],
    ] as const) {
      const n = e.get(key);
      if (n !== undefined) c[prop] = this.bool(n.node, `host.devices ${name}: ${key}`);
    }
    const sids = this.constantList(e.get('stream-ids'), `host.devices ${name}: stream-ids`);
    if (sids !== undefined) c.streamIds = sids;
    return c as unknown as HostDeviceConfig;
  }

  processList(node: YamlNode | null): ProcessSpec[] {
    if (!isSeq(node)) {
      this.problem(node, 'processes: expected a list of {name, memlock, privileged}');
      return [];
    }
    const out: ProcessSpec[] = [];
    for (const item of node.items as YamlNode[]) {
      if (!isMap(item)) {
        this.problem(item, 'processes: each process is a map {name, ...}');
        continue;
      }
      const e = this.entries(item, PROCESS_FIELDS, 'processes entry');
      const name = e.has('name')
        ? this.text(e.get('name')?.node ?? null, 'processes: name')
        : undefined;
      if (name === undefined) continue;
      if (this.processes.has(name))
        this.problem(item, `processes: two processes are named '${name}'`);
      this.processes.add(name);
      const p: { -readonly [K in keyof ProcessSpec]: ProcessSpec[K] } = { name };
      const memlock = e.get('memlock');
      if (memlock !== undefined) {
        const v = this.constant(memlock.node, `processes ${name}: memlock`);
        if (v !== undefined) p.memlockLimitBytes = v;
      }
      const priv = e.get('privileged');
      if (priv !== undefined) {
        const v = this.bool(priv.node, `processes ${name}: privileged`);
        if (v !== undefined) p.privileged = v;
      }
      const lock = e.get('ipc-lock');
      if (lock !== undefined) {
        const v = this.bool(lock.node, `processes ${name}: ipc-lock`);
        if (v !== undefined) p.ipcLock = v;
      }
      const uid = e.get('uid');
      if (uid !== undefined) {
        const v = this.smallConstant(uid.node, `processes ${name}: uid`);
        if (v !== undefined) p.uid = v;
      }
      out.push(p);
    }
    return out;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'nothing';
  if (typeof v === 'boolean') return String(v);
  return typeof v;
}

function hint(word: string, candidates: readonly string[], prefix = ''): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : ` (did you mean '${prefix}${c}'?)`;
}

/**
 * Read and check a scenario. Throws {@link ScenarioError} listing every
 * problem (YAML syntax, unknown steps or fields, bad values, variables used
 * before a step sets them, an inconsistent host) with its line and column.
 */
export function parseScenario(source: string, file: string, options: ParseOptions = {}): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, intAsBigInt: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return {
          line: pos.line,
          col: pos.col,
          message: `YAML syntax: ${e.message.split('\n')[0] ?? e.code}`,
        };
      }),
    );
  }
  const r = new Reader(lines);
  const root = doc.contents as YamlNode | null;
  if (!isMap(root)) {
    throw new ScenarioError(file, [
      { ...r.loc(root), message: 'a scenario is a map with at least `steps:`' },
    ]);
  }
  const top = r.entries(root, TOP_FIELDS, 'scenario');
  const hostNode = top.get('host');
  const host =
    hostNode === undefined
      ? (options.defaultHost ?? (() => FALLBACK_HOST))()
      : r.host(hostNode.node);
  if (hostNode === undefined) for (const d of host?.devices ?? []) r.devices.add(d.name);
  const procNode = top.get('processes');
  const processes: ProcessSpec[] =
    procNode === undefined ? [{ name: 'main' }] : r.processList(procNode.node);
  if (procNode === undefined) r.processes.add('main');
  if (processes.length === 0 && procNode !== undefined) {
    r.problem(procNode.node, 'processes: at least one process');
  }
  const stepsNode = top.get('steps');
  const steps = stepsNode === undefined ? [] : r.steps(stepsNode.node, 'steps');
  const name = top.get('name');
  const description = top.get('description');
  if (r.problems.length > 0) {
    const sorted = [...r.problems].sort((a, b) => a.line - b.line || a.col - b.col);
    throw new ScenarioError(file, sorted);
  }
  return {
    name: (name && r.text(name.node, 'name')) ?? file.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    description: (description && r.text(description.node, 'description')) ?? '',
    file,
    host: host ?? FALLBACK_HOST,
    processes,
    steps,
    stepCount: r.stepNumber,
  };
}
