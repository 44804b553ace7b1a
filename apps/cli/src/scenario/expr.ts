/**
 * The number language of scenario files: integers (decimal, 0x hex,
 * underscores allowed), sizes (`4 GiB`, `2MiB`, `64K`), `$variables`, uAPI
 * constants by name (`MOCK_APERTURE_START`), and + - * with parentheses:
 * `$ram + 2 MiB`, `3 * 4 KiB`. Parsed once when the file is read (so syntax
 * errors carry a line), evaluated when the step runs.
 */
import * as uapi from '@iommufd-sim/uapi-types';

/** A parsed expression. */
export type Expr =
  | { readonly op: 'num'; readonly value: bigint }
  | { readonly op: 'var'; readonly name: string }
  | { readonly op: 'neg'; readonly arg: Expr }
  | { readonly op: '+' | '-' | '*'; readonly left: Expr; readonly right: Expr };

const UNIT: Readonly<Record<string, bigint>> = {
  b: 1n,
  k: 1n << 10n,
  kib: 1n << 10n,
  m: 1n << 20n,
  mib: 1n << 20n,
  g: 1n << 30n,
  gib: 1n << 30n,
  t: 1n << 40n,
  tib: 1n << 40n,
};

/** Every numeric constant uapi-types exports, by name (IOMMU_*, VFIO_*, MOCK_*, E*). */
export const UAPI_CONSTANTS: ReadonlyMap<string, bigint> = new Map(
  Object.entries(uapi)
    .filter(
      (e): e is [string, number] =>
        typeof e[1] === 'number' && /^[A-Z_][A-Z0-9_]*[A-Z0-9]$|^VFIO_TYPE1v2_IOMMU$/.test(e[0]),
    )
    .map(([name, value]) => [name, BigInt(value)]),
);

/** A variable name: letters, digits, `_`, and `.` between parts (`nic.fd`). */
export const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$/;

const TOKEN =
  /\s*(?:(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]+\b)?|\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|([A-Za-z_][A-Za-z0-9_]*)|([-+*()]))/y;

type Token =
  | { kind: 'num'; value: bigint }
  | { kind: 'var'; name: string }
  | { kind: 'punct'; value: string };

function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (m === null) return `cannot read '${text.slice(at).trim()}'`;
    at = TOKEN.lastIndex;
    const [, num, unit, variable, word, punct] = m;
    if (num !== undefined) {
      const value = literal(num, unit);
      if (typeof value === 'string') return value;
      tokens.push({ kind: 'num', value });
    } else if (variable !== undefined) {
      tokens.push({ kind: 'var', name: variable });
    } else if (word !== undefined) {
      const value = UAPI_CONSTANTS.get(word);
      if (value === undefined) {
        return `'${word}' is not a number, a size, a $variable or a uAPI constant`;
      }
      tokens.push({ kind: 'num', value });
    } else {
      tokens.push({ kind: 'punct', value: punct as string });
    }
  }
  return tokens;
}

function literal(num: string, unit: string | undefined): bigint | string {
  const digits = num.replace(/_/g, '');
  const scale = unit === undefined ? 1n : UNIT[unit.toLowerCase()];
  if (scale === undefined)
    return `unknown unit '${unit}' (use B, KiB, MiB, GiB, TiB or K, M, G, T)`;
  if (digits.includes('.')) {
    const [whole = '0', frac = ''] = digits.split('.');
    const denom = 10n ** BigInt(frac.length);
    const value = (BigInt(whole) * denom + BigInt(frac)) * scale;
    if (value % denom !== 0n) return `${num}${unit ?? ''} is not a whole number of bytes`;
    return value / denom;
  }
  return BigInt(digits) * scale;
}

/** Parse `source` (a YAML integer or a string); a string message when it is not an expression. */
export function parseExpr(source: string | number | bigint): Expr | string {
  if (typeof source === 'bigint') return { op: 'num', value: source };
  if (typeof source === 'number') {
    if (!Number.isSafeInteger(source)) return `${source} is not an integer`;
    return { op: 'num', value: BigInt(source) };
  }
  const read = tokenize(source);
  if (typeof read === 'string') return read;
  if (read.length === 0) return 'empty expression';
  const tokens: Token[] = read;
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isPunct = (t: Token | undefined, v: string): boolean =>
    t?.kind === 'punct' && t.value === v;

  function factor(): Expr | string {
    const t = tokens[pos++];
    if (t === undefined) return `'${source}' ends too early`;
    if (t.kind === 'num') return { op: 'num', value: t.value };
    if (t.kind === 'var') return { op: 'var', name: t.name };
    if (t.value === '-') {
      const arg = factor();
      return typeof arg === 'string' ? arg : { op: 'neg', arg };
    }
    if (t.value === '(') {
      const inner = sum();
      if (typeof inner === 'string') return inner;
      if (!isPunct(tokens[pos++], ')')) return `a '(' in '${source}' is not closed`;
      return inner;
    }
    return `unexpected '${t.value}' in '${source}'`;
  }
  function product(): Expr | string {
    let left = factor();
    while (typeof left !== 'string' && isPunct(peek(), '*')) {
      pos++;
      const right = factor();
      if (typeof right === 'string') return right;
      left = { op: '*', left, right };
    }
    return left;
  }
  function sum(): Expr | string {
    let left = product();
    while (typeof left !== 'string' && (isPunct(peek(), '+') || isPunct(peek(), '-'))) {
      const op = (tokens[pos++] as { value: '+' | '-' }).value;
      const right = product();
      if (typeof right === 'string') return right;
      left = { op, left, right };
    }
    return left;
  }
  const out = sum();
  if (typeof out !== 'string' && pos < tokens.length) {
    return `unexpected text after the expression in '${source}'`;
  }
  return out;
}

/** The variables an expression reads. */
export function exprVariables(e: Expr): string[] {
  switch (e.op) {
    case 'num':
      return [];
    case 'var':
      return [e.name];
    case 'neg':
      return exprVariables(e.arg);
    default:
      return [...exprVariables(e.left), ...exprVariables(e.right)];
  }
}

/** Evaluate with `lookup` for variables; throws {@link UnsetVariable} for one that has no value. */
export function evalExpr(e: Expr, lookup: (name: string) => bigint | undefined): bigint {
  switch (e.op) {
    case 'num':
      return e.value;
    case 'var': {
      const v = lookup(e.name);
      if (v === undefined) throw new UnsetVariable(e.name);
      return v;
    }
    case 'neg':
      return -evalExpr(e.arg, lookup);
    case '+':
      return evalExpr(e.left, lookup) + evalExpr(e.right, lookup);
    case '-':
      return evalExpr(e.left, lookup) - evalExpr(e.right, lookup);
    case '*':
      return evalExpr(e.left, lookup) * evalExpr(e.right, lookup);
  }
}

/** A step read a variable that no earlier step set. */
export class UnsetVariable extends Error {
  constructor(readonly variable: string) {
    super(`$${variable} has no value (the step that sets it did not run or failed)`);
  }
}
