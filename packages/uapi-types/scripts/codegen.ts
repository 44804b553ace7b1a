/**
 * Turns the struct schemas into straight-line DataView code: one decode and one
 * encode function per struct, every field at a constant offset. The output is
 * committed as src/generated/codecs.ts; a test re-renders it and fails if the
 * file is stale, so the schema stays the one place a struct is declared.
 */
import { type LaidOutField, type LaidOutMember, layoutStruct } from '../src/layout.js';
import type { ScalarType, StructSchema } from '../src/schema/types.js';

const GET: Record<ScalarType['scalar'], string> = {
  u8: 'getUint8',
  u16: 'getUint16',
  u32: 'getUint32',
  s32: 'getInt32',
  u64: 'getBigUint64',
  aligned_u64: 'getBigUint64',
  aligned_le64: 'getBigUint64',
};

// The check that a value can be stored as it is; anything else takes the
// slow path, which converts what it can and throws for the rest.
const fits64 = (x: string) => `typeof ${x} === 'bigint' && BigInt.asUintN(64, ${x}) === ${x}`;
const FAST_CHECK: Record<ScalarType['scalar'], (x: string) => string> = {
  u8: (x) => `typeof ${x} === 'number' && (${x} & 0xff) === ${x}`,
  u16: (x) => `typeof ${x} === 'number' && (${x} & 0xffff) === ${x}`,
  u32: (x) => `typeof ${x} === 'number' && ${x} >>> 0 === ${x}`,
  s32: (x) => `typeof ${x} === 'number' && (${x} | 0) === ${x}`,
  u64: fits64,
  aligned_u64: fits64,
  aligned_le64: fits64,
};

const SLOW_PATH: Record<ScalarType['scalar'], string> = {
  u8: 'toU8',
  u16: 'toU16',
  u32: 'toU32',
  s32: 'toS32',
  u64: 'toU64',
  aligned_u64: 'toU64',
  aligned_le64: 'toU64',
};

const ARRAY_ELEMENT: Record<number, 'u8' | 'u32' | 'u64'> = { 1: 'u8', 4: 'u32', 8: 'u64' };

function at(offset: number): string {
  return offset === 0 ? 'offset' : `offset + ${offset}`;
}

function endianArg(type: ScalarType): string {
  return type.size === 1 ? '' : ', true';
}

function tsType(field: LaidOutField, indent: string): string {
  const type = field.type;
  if (type.kind === 'scalar') return type.wide ? 'bigint' : 'number';
  if (type.kind === 'array') return type.element.wide ? 'bigint[]' : 'number[]';
  return `{\n${interfaceBody(field.children, `${indent}  `)}${indent}}`;
}

function interfaceBody(members: readonly LaidOutMember[], indent: string): string {
  let out = '';
  for (const member of members) {
    const fields = member.kind === 'union' ? member.members : [member];
    for (const field of fields) {
      const where = `offset ${field.offset}, ${field.size} byte${field.size === 1 ? '' : 's'}`;
      const union =
        member.kind === 'union'
          ? ', shares its bytes with the other members of an anonymous union'
          : '';
      out += `${indent}/** ${cTypeOf(field)} (${where}${union}) */\n`;
      out += `${indent}${field.name}: ${tsType(field, indent)};\n`;
    }
  }
  return out;
}

function cTypeOf(field: LaidOutField): string {
  const type = field.type;
  if (type.kind === 'scalar') return type.cType;
  if (type.kind === 'array') return `${type.element.cType}[${type.count}]`;
  return 'struct';
}

function decodeExpr(field: LaidOutField, indent: string): string {
  const type = field.type;
  if (type.kind === 'scalar') return `v.${GET[type.scalar]}(${at(field.offset)}${endianArg(type)})`;
  if (type.kind === 'array') {
    const items: string[] = [];
    for (let i = 0; i < type.count; i++) {
      items.push(
        `v.${GET[type.element.scalar]}(${at(field.offset + i * type.element.size)}${endianArg(type.element)})`,
      );
    }
    return `[${items.join(', ')}]`;
  }
  return `{\n${decodeBody(field.children, `${indent}  `)}${indent}}`;
}

function decodeBody(members: readonly LaidOutMember[], indent: string): string {
  let out = '';
  for (const member of members) {
    const fields = member.kind === 'union' ? member.members : [member];
    for (const field of fields) out += `${indent}${field.name}: ${decodeExpr(field, indent)},\n`;
  }
  return out;
}

class EncodeWriter {
  private next = 0;
  text = '';

  constructor(private readonly struct: string) {}

  /**
   * Writes the members. Outside a union it also zeroes the padding between
   * them and up to `end`; inside one, the union's bytes were zeroed already
   * and a member's padding may hold another member's bytes.
   */
  members(members: readonly LaidOutMember[], source: string, indent: string, end?: number): void {
    let cursor = members[0]?.offset ?? 0;
    for (const member of members) {
      if (end !== undefined && member.offset > cursor)
        this.text += `${indent}bytes.fill(0, ${at(cursor)}, ${at(member.offset)});\n`;
      cursor = member.offset + member.size;
      if (member.kind === 'union') {
        this.text += `${indent}bytes.fill(0, ${at(member.offset)}, ${at(member.offset + member.size)});\n`;
        for (const field of member.members) this.field(field, source, indent, true);
      } else {
        this.field(member, source, indent, false);
      }
    }
    if (end !== undefined && end > cursor)
      this.text += `${indent}bytes.fill(0, ${at(cursor)}, ${at(end)});\n`;
  }

  /** A union member is written only when given; any other field always (missing → 0). */
  private store(statement: string, local: string, indent: string, inUnion: boolean): void {
    this.text += inUnion
      ? `${indent}if (${local} !== undefined) ${statement}\n`
      : `${indent}${statement}\n`;
  }

  private field(field: LaidOutField, source: string, indent: string, inUnion: boolean): void {
    const type = field.type;
    const path = `${this.struct}.${field.path}`;
    const local = `f${this.next++}`;
    this.text += `${indent}const ${local} = ${source}.${field.name};\n`;
    if (type.kind === 'scalar') {
      const value = `${FAST_CHECK[type.scalar](local)} ? ${local} : ${SLOW_PATH[type.scalar]}(${local}, '${path}')`;
      this.store(
        `v.${GET[type.scalar].replace('get', 'set')}(${at(field.offset)}, ${value}${endianArg(type)});`,
        local,
        indent,
        inUnion,
      );
    } else if (type.kind === 'array') {
      const element = ARRAY_ELEMENT[type.element.size];
      this.store(
        `writeArray(v, ${at(field.offset)}, ${local}, '${element}', ${type.count}, '${path}');`,
        local,
        indent,
        inUnion,
      );
    } else {
      this.text += `${indent}if (${local} !== undefined) {\n`;
      this.text += `${indent}  checkObject(${local}, '${path}');\n`;
      this.members(
        field.children,
        local,
        `${indent}  `,
        inUnion ? undefined : field.offset + field.size,
      );
      this.text += `${indent}}\n`;
    }
  }
}

function renderStruct(schema: StructSchema): string {
  const layout = layoutStruct(schema);
  const n = schema.name;
  const size = layout.sizeof;
  let out = '';
  out += `/**\n * \`struct ${n}\` (${size} bytes, aligned to ${layout.alignof}): ${schema.doc}\n */\n`;
  out += `export interface ${n} {\n${interfaceBody(layout.members, '  ')}}\n\n`;
  out += `function decode_${n}(bytes: Uint8Array, offset = 0): ${n} {\n`;
  out += `  const v = viewOf(bytes, offset, ${size}, '${n}');\n`;
  out += `  return {\n${decodeBody(layout.members, '    ')}  };\n}\n\n`;
  const writer = new EncodeWriter(n);
  writer.members(layout.members, 'value', '  ', size);
  out += `function encode_${n}(\n  value: StructInput<${n}>,\n  bytes: Uint8Array = new Uint8Array(${size}),\n  offset = 0,\n): Uint8Array {\n`;
  out += `  const v = viewOf(bytes, offset, ${size}, '${n}');\n`;
  out += `  checkObject(value, '${n}');\n`;
  out += writer.text;
  out += '  return bytes;\n}\n';
  return out;
}

function fieldPaths(schema: StructSchema): string {
  return Object.keys(layoutStruct(schema).fields)
    .map((p) => `'${p}'`)
    .join(' | ');
}

/** The whole generated module for these structs. */
export function renderCodecs(schemas: readonly StructSchema[]): string {
  let out = '';
  out += '// Generated by scripts/generate-codecs.ts from src/schema/. Do not edit by hand:\n';
  out += '// change the schema and run `npm run generate -w @iommufd-sim/uapi-types`.\n';
  out +=
    "import { checkObject, type StructInput, toS32, toU8, toU16, toU32, toU64, viewOf, writeArray } from '../codec.js';\n\n";
  for (const schema of schemas) out += `${renderStruct(schema)}\n`;
  out += '/** Each struct name and the type its `decode` returns. */\n';
  out += 'export interface StructTypes {\n';
  for (const s of schemas) out += `  ${s.name}: ${s.name};\n`;
  out += '}\n\n';
  out += '/** Each struct name and the dotted paths of its fields. */\n';
  out += 'export interface StructFieldPaths {\n';
  for (const s of schemas) out += `  ${s.name}: ${fieldPaths(s)};\n`;
  out += '}\n\n';
  out += '/** The generated encode and decode functions, by struct name. */\n';
  out += 'export const codecs = {\n';
  for (const s of schemas)
    out += `  ${s.name}: { decode: decode_${s.name}, encode: encode_${s.name} },\n`;
  out += '} as const;\n';
  return out;
}
