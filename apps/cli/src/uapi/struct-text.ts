/**
 * Structs as strace prints them: `{size=40, flags=IOMMU_IOAS_MAP_READABLE,
 * ioas_id=1, user_va=0x7f0000000000, ...}`, with flag and enum names, 64-bit
 * values in hex, zero reserved fields left out, and for iommu_test_cmd only
 * the union member its op uses.
 */
import { enums, enumValueName, type StructName, structs } from '@iommufd-sim/uapi-types';
import { hex } from '../util/hex.js';
import { fieldEnum, formatEnumValue } from './field-enums.js';

/** A decoded struct: what `structs.X.decode` returns. */
export type Decoded = Readonly<Record<string, unknown>>;

/** Whether `name` is a struct uapi-types knows. */
export function isStructName(name: string): name is StructName {
  return Object.hasOwn(structs, name);
}

/** Decode `bytes` as `structName`; bytes shorter than the struct are zero-extended. */
export function decodeStruct(structName: StructName, bytes: Uint8Array): Decoded {
  const s = structs[structName];
  const full = bytes.length >= s.sizeof ? bytes : new Uint8Array(s.sizeof);
  if (full !== bytes) full.set(bytes);
  return s.decode(full) as unknown as Decoded;
}

const TEST_OP_MEMBER: Readonly<Record<string, string>> = {
  IOMMU_TEST_OP_ADD_RESERVED: 'add_reserved',
  IOMMU_TEST_OP_MOCK_DOMAIN: 'mock_domain',
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: 'mock_domain_flags',
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: 'mock_domain_replace',
  IOMMU_TEST_OP_MD_CHECK_MAP: 'check_map',
  IOMMU_TEST_OP_MD_CHECK_REFS: 'check_refs',
  IOMMU_TEST_OP_CREATE_ACCESS: 'create_access',
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: 'destroy_access_pages',
  IOMMU_TEST_OP_ACCESS_PAGES: 'access_pages',
  IOMMU_TEST_OP_ACCESS_RW: 'access_rw',
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: 'memory_limit',
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: 'access_replace_ioas',
  IOMMU_TEST_OP_DIRTY: 'dirty',
  IOMMU_TEST_OP_MD_CHECK_IOTLB: 'check_iotlb',
  IOMMU_TEST_OP_TRIGGER_IOPF: 'trigger_iopf',
  IOMMU_TEST_OP_DEV_CHECK_CACHE: 'check_dev_cache',
  IOMMU_TEST_OP_TRIGGER_VEVENT: 'trigger_vevent',
  IOMMU_TEST_OP_PASID_ATTACH: 'pasid_attach',
  IOMMU_TEST_OP_PASID_REPLACE: 'pasid_replace',
  IOMMU_TEST_OP_PASID_DETACH: 'pasid_detach',
  IOMMU_TEST_OP_PASID_CHECK_HWPT: 'pasid_check',
};

/** The top-level member names of a struct worth printing for this value. */
function visibleKeys(structName: string, value: Decoded): string[] {
  const keys = Object.keys(value);
  if (structName !== 'iommu_test_cmd' || value.op === undefined) return keys;
  const opName = enumValueName('iommu_test_op', Number(value.op));
  const member = opName === undefined ? undefined : TEST_OP_MEMBER[opName];
  const unionMembers = new Set(Object.values(TEST_OP_MEMBER));
  return keys.filter((k) => !unionMembers.has(k) || k === member);
}

function formatValue(structName: string, path: string, value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint') {
    const info = fieldEnum(structName, path);
    if (info !== undefined) return formatEnumValue(info, value);
    // Ids, sizes and counts read best in decimal; registers and addresses in hex.
    return typeof value === 'bigint' || value >= 0x10000 ? hex(value) : String(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => formatValue(structName, '', v)).join(', ')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    return formatFields(structName, path, value as Decoded, Object.keys(value));
  }
  return String(value);
}

function isZero(value: unknown): boolean {
  if (typeof value === 'number' || typeof value === 'bigint') return Number(value) === 0;
  if (Array.isArray(value)) return value.every(isZero);
  return false;
}

function formatFields(structName: string, prefix: string, value: Decoded, keys: string[]): string {
  const parts: string[] = [];
  for (const key of keys) {
    const v = value[key];
    if (key.startsWith('__') && isZero(v)) continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    parts.push(`${key}=${formatValue(structName, path, v)}`);
  }
  return `{${parts.join(', ')}}`;
}

/** `{field=value, ...}` for a decoded struct. */
export function formatStruct(structName: string, value: Decoded): string {
  return formatFields(structName, '', value, visibleKeys(structName, value));
}

/**
 * The fields of `after` that differ from `before`, as a struct of their own
 * (nested members narrowed to what changed), or undefined when nothing did.
 */
export function changedFields(before: Decoded, after: Decoded): Decoded | undefined {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(after)) {
    const a = after[key];
    const b = before[key];
    if (typeof a === 'object' && a !== null && !Array.isArray(a)) {
      const inner = changedFields((b ?? {}) as Decoded, a as Decoded);
      if (inner !== undefined) out[key] = inner;
    } else if (JSON.stringify(a, big) !== JSON.stringify(b, big)) {
      out[key] = a;
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

/** `{changed=...}` of the changed fields, for the part strace prints after `=>`. */
export function formatChanged(structName: string, before: Decoded, after: Decoded): string {
  const changed = changedFields(before, after);
  if (changed === undefined) return '';
  const keys = visibleKeys(structName, after).filter((k) => k in changed);
  return formatFields(structName, '', changed, keys);
}

/** A plain-JSON view of a decoded struct with enum and flag names, for `--format json`. */
export function namedFields(
  structName: string,
  value: Decoded,
  prefix = '',
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const keys = prefix === '' ? visibleKeys(structName, value) : Object.keys(value);
  for (const key of keys) {
    const v = value[key];
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const info = fieldEnum(structName, path);
    if (info !== undefined && (typeof v === 'number' || typeof v === 'bigint')) {
      out[key] = formatEnumValue(info, v);
    } else if (typeof v === 'bigint') {
      out[key] = hex(v);
    } else if (Array.isArray(v)) {
      out[key] = v.map((x) => (typeof x === 'bigint' ? hex(x) : x));
    } else if (typeof v === 'object' && v !== null) {
      out[key] = namedFields(structName, v as Decoded, path);
    } else {
      out[key] = v;
    }
  }
  return out;
}

/** Every enum name the field table points at exists (checked by a test). */
export function unknownFieldEnums(table: Readonly<Record<string, string>>): string[] {
  return Object.values(table).filter((name) => enums[name] === undefined);
}
