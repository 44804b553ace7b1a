/**
 * The schema language: how a C struct of the uAPI is declared once, in
 * declaration order, so that its layout and codec can be derived from it.
 */

/** The C integer types the iommufd uAPI uses. */
export type ScalarKind = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 'aligned_u64' | 'aligned_le64';

/** A C integer type: its size and alignment on Linux x86-64 (LP64), and its C spelling. */
export interface ScalarType {
  readonly kind: 'scalar';
  readonly scalar: ScalarKind;
  readonly size: number;
  readonly align: number;
  /** The type as the kernel header spells it, for example `__aligned_u64`. */
  readonly cType: string;
  /** True for the types whose JavaScript value is a bigint (the 64-bit ones). */
  readonly wide: boolean;
}

/** A fixed-length array of a scalar type, such as `__u32 idr[6]`. */
export interface ArrayType {
  readonly kind: 'array';
  readonly element: ScalarType;
  readonly count: number;
}

/** An unnamed struct used as a member, such as each per-op payload of `iommu_test_cmd`. */
export interface NestedStructType {
  readonly kind: 'struct';
  readonly members: readonly Member[];
}

/** The type of a named member. */
export type FieldType = ScalarType | ArrayType | NestedStructType;

/** A named member of a struct. */
export interface NamedMember {
  readonly kind: 'field';
  readonly name: string;
  readonly type: FieldType;
}

/** An anonymous union: its members share one offset and are named as if they were the struct's own. */
export interface AnonymousUnion {
  readonly kind: 'union';
  readonly members: readonly NamedMember[];
}

/** One member of a struct, in declaration order. */
export type Member = NamedMember | AnonymousUnion;

/** A struct of the uAPI, as declared in its kernel header. */
export interface StructSchema {
  /** The C tag, for example `iommu_ioas_map`. */
  readonly name: string;
  /** The header that declares it, for example `include/uapi/linux/iommufd.h`. */
  readonly header: string;
  /** One sentence on what the struct is for. */
  readonly doc: string;
  readonly members: readonly Member[];
}

function scalar(kind: ScalarKind, size: number, cType: string): ScalarType {
  return Object.freeze({
    kind: 'scalar',
    scalar: kind,
    size,
    align: size,
    cType,
    wide: size === 8,
  });
}

/** `__u8` */
export const u8 = scalar('u8', 1, '__u8');
/** `__u16` */
export const u16 = scalar('u16', 2, '__u16');
/** `__u32` */
export const u32 = scalar('u32', 4, '__u32');
/** `__s32` */
export const s32 = scalar('s32', 4, '__s32');
/** `__u64`: 8-byte aligned on x86-64 (only 4 on i386, which this model does not target). */
export const u64 = scalar('u64', 8, '__u64');
/** `__aligned_u64`: a u64 that is 8-byte aligned on every ABI; pointers travel in these. */
export const aligned_u64 = scalar('aligned_u64', 8, '__aligned_u64');
/** `__aligned_le64`: little-endian on every host (hardware command and event words). */
export const aligned_le64 = scalar('aligned_le64', 8, '__aligned_le64');

/** A member declaration: `[name, type]`, or an anonymous union made by {@link union}. */
export type MemberSpec = readonly [name: string, type: FieldType] | AnonymousUnion;

function toMembers(specs: readonly MemberSpec[]): readonly Member[] {
  return Object.freeze(
    specs.map((spec): Member => {
      if ('kind' in spec) return spec;
      const [name, type] = spec;
      return Object.freeze({ kind: 'field', name, type });
    }),
  );
}

/** `type name[count]` */
export function array(element: ScalarType, count: number): ArrayType {
  return Object.freeze({ kind: 'array', element, count });
}

/** An unnamed `struct { ... }` used as the type of a named member. */
export function nested(members: readonly MemberSpec[]): NestedStructType {
  return Object.freeze({ kind: 'struct', members: toMembers(members) });
}

/** An anonymous `union { ... };` whose members are reached directly by name. */
export function union(
  members: readonly (readonly [name: string, type: FieldType])[],
): AnonymousUnion {
  return Object.freeze({ kind: 'union', members: toMembers(members) as readonly NamedMember[] });
}

/** Declares a struct of the uAPI. */
export function struct(
  name: string,
  header: string,
  doc: string,
  members: readonly MemberSpec[],
): StructSchema {
  return Object.freeze({ name, header, doc, members: toMembers(members) });
}
