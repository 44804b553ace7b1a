// The codecs: round trips for every struct (fast-check), exact offsets checked
// against the fixtures' numbers, and refusal of values that do not fit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FieldInfo,
  type LaidOutMember,
  layoutStruct,
  type StructDescriptor,
  type StructName,
  structNames,
  structs,
} from '../src/index.js';
import { abi, testAbi } from './fixtures.js';

/** Any struct's codec, seen through plain objects. */
interface Codec {
  readonly sizeof: number;
  readonly fields: Readonly<Record<string, FieldInfo>>;
  readonly schema: StructDescriptor<unknown>['schema'];
  encode(value: object, bytes?: Uint8Array, offset?: number): Uint8Array;
  decode(bytes: Uint8Array, offset?: number): Record<string, unknown>;
}
const table = structs as unknown as Record<string, Codec>;
const fcParams = { numRuns: 200 };

const U64_MAX = 2n ** 64n - 1n;

function scalarArbitrary(scalar: string): fc.Arbitrary<unknown> {
  switch (scalar) {
    case 'u8':
      return fc.integer({ min: 0, max: 0xff });
    case 'u16':
      return fc.integer({ min: 0, max: 0xffff });
    case 'u32':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 's32':
      return fc.integer({ min: -0x80000000, max: 0x7fffffff });
    default:
      return fc.bigInt({ min: 0n, max: U64_MAX });
  }
}

/**
 * A value for a struct: every plain field, and exactly one member of each
 * union (so the value says unambiguously what the union bytes hold).
 */
function valueArbitrary(members: readonly LaidOutMember[]): fc.Arbitrary<Record<string, unknown>> {
  const parts: fc.Arbitrary<Record<string, unknown>>[] = members.map((m) => {
    if (m.kind === 'union') {
      return fc.oneof(...m.members.map((f) => fieldArbitrary(f).map((v) => ({ [f.name]: v }))));
    }
    return fieldArbitrary(m).map((v) => ({ [m.name]: v }));
  });
  return fc.tuple(...parts).map((objects) => Object.assign({}, ...objects));
}

function fieldArbitrary(field: Extract<LaidOutMember, { kind: 'field' }>): fc.Arbitrary<unknown> {
  const type = field.type;
  if (type.kind === 'scalar') return scalarArbitrary(type.scalar);
  if (type.kind === 'array') {
    return fc.array(scalarArbitrary(type.element.scalar), {
      minLength: type.count,
      maxLength: type.count,
    });
  }
  return valueArbitrary(field.children);
}

function hasUnion(members: readonly LaidOutMember[]): boolean {
  return members.some((m) => m.kind === 'union' || hasUnion(m.children));
}

/** Which bytes some member covers (the rest would be padding). */
function coveredBytes(members: readonly LaidOutMember[], mask: boolean[]): boolean[] {
  for (const m of members) {
    if (m.kind === 'union') coveredBytes(m.members, mask);
    else if (m.children.length > 0) coveredBytes(m.children, mask);
    else for (let i = m.offset; i < m.offset + m.size; i++) mask[i] = true;
  }
  return mask;
}

/** Keeps, from a decoded value, only the keys the encoded value had (recursively). */
function project(decoded: unknown, like: unknown): unknown {
  if (typeof like !== 'object' || like === null || Array.isArray(like)) return decoded;
  const source = decoded as Record<string, unknown>;
  return Object.fromEntries(Object.entries(like).map(([k, v]) => [k, project(source[k], v)]));
}

describe.each([...structNames])('%s', (name: StructName) => {
  const codec = table[name]!;
  const layout = layoutStruct(codec.schema);

  it('decode(encode(x)) gives back x', () => {
    fc.assert(
      fc.property(valueArbitrary(layout.members), (value) => {
        const decoded = codec.decode(codec.encode(value));
        if (hasUnion(layout.members)) expect(project(decoded, value)).toEqual(value);
        else expect(decoded).toEqual(value);
      }),
      fcParams,
    );
  });

  it('encode(decode(bytes)) gives back the bytes', () => {
    // Padding bytes (only the tail of iommu_test_cmd has any) belong to no
    // field: they come back as zero, every other byte as it was.
    const covered = coveredBytes(layout.members, []);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: codec.sizeof, maxLength: codec.sizeof }), (bytes) => {
        const expected = bytes.map((b, i) => (covered[i] ? b : 0));
        expect(codec.encode(codec.decode(bytes))).toEqual(expected);
      }),
      fcParams,
    );
  });

  it('works at an offset inside a larger buffer and touches nothing else', () => {
    fc.assert(
      fc.property(valueArbitrary(layout.members), fc.nat({ max: 64 }), (value, offset) => {
        const buffer = new Uint8Array(offset + codec.sizeof + 16).fill(0xa5);
        codec.encode(value, buffer, offset);
        expect(buffer.subarray(0, offset).every((b) => b === 0xa5)).toBe(true);
        expect(buffer.subarray(offset + codec.sizeof).every((b) => b === 0xa5)).toBe(true);
        expect(buffer.subarray(offset, offset + codec.sizeof)).toEqual(codec.encode(value));
        expect(codec.decode(buffer, offset)).toEqual(codec.decode(codec.encode(value)));
      }),
      fcParams,
    );
  });

  it('encodes a missing field as zero', () => {
    expect(codec.encode({}).every((b) => b === 0)).toBe(true);
    expect(codec.encode({}).length).toBe(codec.sizeof);
  });

  it('refuses a buffer or offset the struct does not fit in', () => {
    expect(() => codec.decode(new Uint8Array(codec.sizeof - 1))).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(codec.sizeof), 1)).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(codec.sizeof + 8), -1)).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(codec.sizeof + 8), 0.5)).toThrow(RangeError);
    expect(() => codec.encode({}, new Uint8Array(codec.sizeof), 4)).toThrow(RangeError);
  });
});

/** Every leaf of the fixtures with its gcc offset and size, by struct. */
const fixtureLeaves: [string, { path: string; offset: number; size: number }[]][] = [
  ...Object.entries(abi.structs).map(
    ([name, s]) => [name, s.flat_fields] as [string, typeof s.flat_fields],
  ),
  ...testAbi.structs.map(
    (s) =>
      [
        s.name,
        s.fields
          .filter((f) => f.kind === 'scalar')
          .map((f) => ({ path: f.name, offset: f.offset, size: f.size })),
      ] as [string, { path: string; offset: number; size: number }[]],
  ),
];

function setPath(path: string, value: unknown): Record<string, unknown> {
  const parts = path.split('.');
  let result: unknown = value;
  for (let i = parts.length - 1; i >= 0; i--) result = { [parts[i]!]: result };
  return result as Record<string, unknown>;
}

function getPath(object: unknown, path: string): unknown {
  return path.split('.').reduce((o, k) => (o as Record<string, unknown>)[k], object);
}

function allOnes(field: { type: string; count?: number }): unknown {
  const one =
    field.type === 's32'
      ? -1
      : ['u8', 'u16', 'u32'].includes(field.type)
        ? 2 ** (8 * sizeOf(field.type)) - 1
        : U64_MAX;
  return field.count === undefined ? one : Array.from({ length: field.count }, () => one);
}

function sizeOf(type: string): number {
  return { u8: 1, u16: 2, u32: 4, s32: 4 }[type] ?? 8;
}

describe('codecs against the fixtures offsets', () => {
  it.each(fixtureLeaves)('%s: encoding one field sets exactly its bytes', (name, leaves) => {
    const codec = table[name]!;
    const fields = codec.fields as Record<string, { type: string; count?: number }>;
    for (const leaf of leaves) {
      const bytes = codec.encode(setPath(leaf.path, allOnes(fields[leaf.path]!)));
      const set = [...bytes.keys()].filter((i) => bytes[i] !== 0);
      const expected = Array.from({ length: leaf.size }, (_, i) => leaf.offset + i);
      expect(set, `${name}.${leaf.path}`).toEqual(expected);
    }
  });

  it.each(fixtureLeaves)(
    '%s: decoding reads each field little-endian at its offset',
    (name, leaves) => {
      const codec = table[name]!;
      const bytes = Uint8Array.from({ length: codec.sizeof }, (_, i) => (i * 29 + 7) & 0xff);
      const decoded = codec.decode(bytes);
      const fields = codec.fields as Record<string, { type: string; count?: number }>;
      for (const leaf of leaves) {
        const info = fields[leaf.path]!;
        const width = info.count === undefined ? leaf.size : leaf.size / info.count;
        const read = (at: number) => {
          let v = 0n;
          for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
          if (info.type === 's32') return Number(BigInt.asIntN(32, v));
          return width === 8 ? v : Number(v);
        };
        const expected =
          info.count === undefined
            ? read(leaf.offset)
            : Array.from({ length: info.count }, (_, i) => read(leaf.offset + i * width));
        expect(getPath(decoded, leaf.path), `${name}.${leaf.path}`).toEqual(expected);
      }
    },
  );
});

describe('values that do not fit', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['u32 negative', { flags: -1 }, 'iommu_ioas_map.flags'],
    ['u32 too wide', { flags: 2 ** 32 }, 'iommu_ioas_map.flags'],
    ['u32 not an integer', { flags: 1.5 }, 'iommu_ioas_map.flags'],
    ['u32 NaN', { flags: Number.NaN }, 'iommu_ioas_map.flags'],
    ['u32 Infinity', { flags: Number.POSITIVE_INFINITY }, 'iommu_ioas_map.flags'],
    ['u32 bigint too wide', { flags: 2n ** 32n }, 'iommu_ioas_map.flags'],
    ['u64 negative bigint', { iova: -1n }, 'iommu_ioas_map.iova'],
    ['u64 too wide', { iova: 2n ** 64n }, 'iommu_ioas_map.iova'],
    ['u64 negative number', { iova: -4096 }, 'iommu_ioas_map.iova'],
    ['u64 fractional number', { iova: 4096.5 }, 'iommu_ioas_map.iova'],
    ['u64 number above 2^53', { iova: 2 ** 60 }, 'iommu_ioas_map.iova'],
  ];

  it.each(cases)('%s throws RangeError naming the field', (_label, value, path) => {
    expect(() => structs.iommu_ioas_map.encode(value)).toThrow(RangeError);
    expect(() => structs.iommu_ioas_map.encode(value)).toThrow(path);
  });

  it('refuses each integer width at its edges', () => {
    expect(() => structs.iommu_hw_info.encode({ out_max_pasid_log2: 256 })).toThrow(RangeError);
    expect(() => structs.iommu_hw_info.encode({ out_max_pasid_log2: -1 })).toThrow(RangeError);
    expect(() => structs.iommu_option.encode({ op: 0x10000 })).toThrow(RangeError);
    expect(() => structs.iommu_ioas_map_file.encode({ fd: 2 ** 31 })).toThrow(RangeError);
    expect(() => structs.iommu_ioas_map_file.encode({ fd: -(2 ** 31) - 1 })).toThrow(RangeError);
    expect(
      structs.iommu_hw_info.decode(structs.iommu_hw_info.encode({ out_max_pasid_log2: 255 }))
        .out_max_pasid_log2,
    ).toBe(255);
    expect(structs.iommu_option.decode(structs.iommu_option.encode({ op: 0xffff })).op).toBe(
      0xffff,
    );
    expect(
      structs.iommu_ioas_map_file.decode(structs.iommu_ioas_map_file.encode({ fd: -1 })).fd,
    ).toBe(-1);
  });

  it('refuses arrays of the wrong shape and elements that do not fit', () => {
    expect(() => structs.iommu_hw_info_arm_smmuv3.encode({ idr: [1, 2, 3, 4, 5, 6, 7] })).toThrow(
      RangeError,
    );
    expect(() => structs.iommu_hw_info_arm_smmuv3.encode({ idr: [1, -2] })).toThrow('idr[1]');
    expect(() => structs.iommu_hwpt_arm_smmuv3.encode({ ste: [2n ** 64n] })).toThrow(RangeError);
    expect(() =>
      structs.iommu_hw_info_arm_smmuv3.encode({ idr: 5 as unknown as number[] }),
    ).toThrow(TypeError);
  });

  it('refuses values of the wrong kind with a TypeError', () => {
    expect(() => structs.iommu_ioas_map.encode({ flags: '1' as unknown as number })).toThrow(
      TypeError,
    );
    expect(() => structs.iommu_ioas_map.encode({ iova: true as unknown as bigint })).toThrow(
      TypeError,
    );
    expect(() => structs.iommu_ioas_map.encode(null as unknown as object)).toThrow(TypeError);
    expect(() => structs.iommu_test_cmd.encode({ add_reserved: 3 as unknown as object })).toThrow(
      TypeError,
    );
    expect(() => structs.iommu_ioas_map.decode([1, 2, 3] as unknown as Uint8Array)).toThrow(
      TypeError,
    );
  });
});

describe('padding', () => {
  it('only iommu_test_cmd has padding, its 4 tail bytes, and encode zeroes them', () => {
    for (const name of structNames) {
      const codec = table[name]!;
      const covered = coveredBytes(layoutStruct(codec.schema).members, []);
      const padding = [...Array(codec.sizeof).keys()].filter((i) => !covered[i]);
      expect(padding, name).toEqual(name === 'iommu_test_cmd' ? [68, 69, 70, 71] : []);
    }
    const bytes = new Uint8Array(72).fill(0xff);
    structs.iommu_test_cmd.encode({ size: 72 }, bytes);
    expect([...bytes.subarray(68)]).toEqual([0, 0, 0, 0]);
  });
});

describe('values that fit', () => {
  it('accepts an in-range bigint for a small field and a safe integer for a u64', () => {
    const value = structs.iommu_ioas_map.decode(
      structs.iommu_ioas_map.encode({ flags: 6n, iova: 0x1000 }),
    );
    expect(value.flags).toBe(6);
    expect(value.iova).toBe(0x1000n);
  });

  it('writes integers little-endian, as the x86-64 host does', () => {
    const bytes = structs.iommu_destroy.encode({ size: 8, id: 0x01020304 });
    expect([...bytes]).toEqual([8, 0, 0, 0, 4, 3, 2, 1]);
    const le = structs.iommu_hwpt_arm_smmuv3.encode({ ste: [0x0102030405060708n, 0n] });
    expect([...le.subarray(0, 8)]).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
  });

  it('writes the members of a union that are given, over zeroed union bytes', () => {
    const bytes = new Uint8Array(72).fill(0xff);
    structs.iommu_test_cmd.encode({ size: 72, op: 2, mock_domain: { out_hwpt_id: 7 } }, bytes);
    expect([...bytes.subarray(16, 64)].filter((b) => b !== 0)).toEqual([7]);
    expect(structs.iommu_test_cmd.decode(bytes).mock_domain_flags.out_hwpt_id).toBe(7);
    const info = structs.iommu_hw_info.decode(structs.iommu_hw_info.encode({ in_data_type: 3 }));
    expect(info.out_data_type).toBe(3);
  });

  it('reads the same bytes through every member of a union', () => {
    const bytes = structs.iommu_test_cmd.encode({
      check_map: { iova: 0x1000000n, length: 0x2000n },
    });
    const cmd = structs.iommu_test_cmd.decode(bytes);
    expect(cmd.add_reserved).toEqual({ start: 0x1000000n, length: 0x2000n });
    expect(cmd.check_refs.length).toBe(0x1000000n);
  });
});
