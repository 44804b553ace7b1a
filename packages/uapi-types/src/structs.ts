/**
 * The `structs` table: every struct of the modelled uAPI by its C name, with
 * its layout (sizeof, alignof, field offsets) and its codec.
 */
import type { StructInput } from './codec.js';
import { codecs, type StructFieldPaths, type StructTypes } from './generated/codecs.js';
import { type FieldInfo, layoutStruct } from './layout.js';
import { structSchemas } from './schema/index.js';
import type { StructSchema } from './schema/types.js';

/** The C name of a struct the package knows, for example `'iommu_ioas_map'`. */
export type StructName = keyof StructTypes;

/** One struct: its layout and its codec. */
export interface StructDescriptor<T, F extends string = string> {
  /** The C tag, for example `iommu_ioas_map`. */
  readonly name: string;
  /** The kernel header that declares it. */
  readonly header: string;
  /** What the struct is for, in one sentence. */
  readonly doc: string;
  /** `sizeof(struct name)` on Linux x86-64. */
  readonly sizeof: number;
  /** `__alignof__(struct name)` on Linux x86-64. */
  readonly alignof: number;
  /** Every field by dotted path (`mock_domain.out_stdev_id`), nested structs included. */
  readonly fields: Readonly<Record<F, FieldInfo>>;
  /** The declaration the layout and codec were derived from. */
  readonly schema: StructSchema;
  /**
   * Reads the struct from `bytes` at `offset` into a plain object: 64-bit
   * fields as bigint, smaller integers as number, arrays as arrays, nested
   * structs as objects, every member of a union filled from the same bytes.
   * Throws RangeError if the struct does not fit in `bytes`.
   */
  decode(bytes: Uint8Array, offset?: number): T;
  /**
   * Writes `value` at `offset` of `bytes` (a new zeroed buffer of `sizeof`
   * bytes when none is given) and returns the buffer. Every field is written;
   * a missing field as zero. For a union, the members given are written in
   * declaration order over zeroed bytes. A value that does not fit its C type
   * (negative, too wide, not an integer) throws RangeError; a value of the
   * wrong kind throws TypeError. Nothing is ever silently wrapped.
   */
  encode(value: StructInput<T>, bytes?: Uint8Array, offset?: number): Uint8Array;
}

/** The type of the {@link structs} table. */
export type Structs = {
  readonly [K in StructName]: StructDescriptor<StructTypes[K], StructFieldPaths[K]>;
};

function buildStructs(): Structs {
  const table: Record<string, StructDescriptor<unknown>> = {};
  for (const schema of structSchemas) {
    const layout = layoutStruct(schema);
    const codec = codecs[schema.name as StructName] as unknown as Pick<
      StructDescriptor<unknown>,
      'decode' | 'encode'
    >;
    table[schema.name] = Object.freeze({
      name: schema.name,
      header: schema.header,
      doc: schema.doc,
      sizeof: layout.sizeof,
      alignof: layout.alignof,
      fields: layout.fields,
      schema,
      decode: codec.decode,
      encode: codec.encode,
    });
  }
  return Object.freeze(table) as unknown as Structs;
}

/**
 * Every struct of the modelled uAPI by its kernel name: the 35 of
 * `linux/iommufd.h`, the 3 VFIO cdev structs of `linux/vfio.h`, the 7 of
 * the selftest header `iommufd_test.h`, and the 7 type1 structs of
 * `linux/vfio.h` that iommufd's VFIO container emulation reads and writes.
 *
 * @example
 * const arg = structs.iommu_ioas_map.encode({ size: 40, flags: 6, ioas_id: 1, user_va: va, length: 4096n });
 * structs.iommu_ioas_map.decode(arg).iova; // bigint
 * structs.iommu_test_cmd.fields['mock_domain.out_stdev_id']; // { offset: 16, size: 4, ... }
 */
export const structs: Structs = buildStructs();

/** The names of every struct in {@link structs}, in header order. */
export const structNames: readonly StructName[] = Object.freeze(
  structSchemas.map((s) => s.name as StructName),
);

export type { FieldInfo } from './layout.js';
