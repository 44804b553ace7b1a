/**
 * C struct layout for Linux x86-64 (LP64): each member at the next offset that
 * is a multiple of its alignment, unions sized to their largest member, every
 * aggregate rounded up to its own alignment. The tests compare the result with
 * the numbers gcc printed for the 6.17 headers.
 */
import type { FieldType, Member, NamedMember, ScalarKind, StructSchema } from './schema/types.js';

/** Where one field lives inside its struct. */
export interface FieldInfo {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Size in bytes (of the whole array, for an array). */
  readonly size: number;
  /** The scalar type, or `struct` for a nested struct member. */
  readonly type: ScalarKind | 'struct';
  /** The C type as the header spells it, for example `__u8[3]`. */
  readonly cType: string;
  /** The element count, for an array. */
  readonly count?: number;
}

/** A named member after layout, with its dotted path (`mock_domain.out_stdev_id`). */
export interface LaidOutField {
  readonly kind: 'field';
  readonly name: string;
  readonly path: string;
  readonly offset: number;
  readonly size: number;
  readonly align: number;
  readonly type: FieldType;
  /** The members of a nested struct, laid out at their absolute offsets. */
  readonly children: readonly LaidOutMember[];
}

/** An anonymous union after layout. */
export interface LaidOutUnion {
  readonly kind: 'union';
  readonly offset: number;
  readonly size: number;
  readonly align: number;
  readonly members: readonly LaidOutField[];
}

/** A member of a struct after layout: a named field or an anonymous union. */
export type LaidOutMember = LaidOutField | LaidOutUnion;

/** A struct after layout. */
export interface StructLayout {
  readonly sizeof: number;
  readonly alignof: number;
  /** Every named member by dotted path, nested structs included, in declaration order. */
  readonly fields: Readonly<Record<string, FieldInfo>>;
  /** The laid-out member tree, for code that walks the struct. */
  readonly members: readonly LaidOutMember[];
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

interface Placed {
  readonly members: readonly LaidOutMember[];
  readonly end: number;
  readonly align: number;
}

/** The alignment of a member's type: its own for a scalar, its element's, or its widest member's. */
function alignmentOf(type: FieldType): number {
  if (type.kind === 'scalar') return type.align;
  if (type.kind === 'array') return type.element.align;
  let align = 1;
  for (const m of type.members) {
    const types = m.kind === 'union' ? m.members.map((u) => u.type) : [m.type];
    for (const t of types) align = Math.max(align, alignmentOf(t));
  }
  return align;
}

function placeSequence(members: readonly Member[], start: number, prefix: string): Placed {
  let offset = start;
  let align = 1;
  const out: LaidOutMember[] = [];
  for (const member of members) {
    if (member.kind === 'union') {
      const unionAlign = Math.max(1, ...member.members.map((m) => alignmentOf(m.type)));
      offset = alignUp(offset, unionAlign);
      const at = offset;
      const placed = member.members.map((m) => placeField(m, at, prefix));
      const unionSize = alignUp(Math.max(0, ...placed.map((p) => p.size)), unionAlign);
      out.push({ kind: 'union', offset: at, size: unionSize, align: unionAlign, members: placed });
      offset += unionSize;
      align = Math.max(align, unionAlign);
    } else {
      offset = alignUp(offset, alignmentOf(member.type));
      const field = placeField(member, offset, prefix);
      out.push(field);
      offset += field.size;
      align = Math.max(align, field.align);
    }
  }
  return { members: out, end: offset, align };
}

function placeField(member: NamedMember, offset: number, prefix: string): LaidOutField {
  const path = prefix + member.name;
  const type = member.type;
  let size: number;
  let align: number;
  let children: readonly LaidOutMember[] = [];
  if (type.kind === 'scalar') {
    size = type.size;
    align = type.align;
  } else if (type.kind === 'array') {
    size = type.element.size * type.count;
    align = type.element.align;
  } else {
    const inner = placeSequence(type.members, offset, `${path}.`);
    size = alignUp(inner.end - offset, inner.align);
    align = inner.align;
    children = inner.members;
  }
  return { kind: 'field', name: member.name, path, offset, size, align, type, children };
}

function collectFields(members: readonly LaidOutMember[], into: Record<string, FieldInfo>): void {
  for (const member of members) {
    if (member.kind === 'union') {
      collectFields(member.members, into);
      continue;
    }
    const type = member.type;
    if (type.kind === 'scalar') {
      into[member.path] = Object.freeze({
        offset: member.offset,
        size: member.size,
        type: type.scalar,
        cType: type.cType,
      });
    } else if (type.kind === 'array') {
      into[member.path] = Object.freeze({
        offset: member.offset,
        size: member.size,
        type: type.element.scalar,
        cType: `${type.element.cType}[${type.count}]`,
        count: type.count,
      });
    } else {
      into[member.path] = Object.freeze({
        offset: member.offset,
        size: member.size,
        type: 'struct',
        cType: 'struct',
      });
      collectFields(member.children, into);
    }
  }
}

/** Lays out a struct by the x86-64 C rules. */
export function layoutStruct(schema: StructSchema): StructLayout {
  const placed = placeSequence(schema.members, 0, '');
  const fields: Record<string, FieldInfo> = {};
  collectFields(placed.members, fields);
  return Object.freeze({
    sizeof: alignUp(placed.end, placed.align),
    alignof: placed.align,
    fields: Object.freeze(fields),
    members: placed.members,
  });
}
