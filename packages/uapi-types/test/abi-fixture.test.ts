// The package against the compiler's numbers: every struct, field, ioctl and
// constant of both fixture files, and nothing the fixtures do not have.
import { describe, expect, it } from 'vitest';
import { vfioType1Enums } from '../src/constants/vfio-type1.js';
import * as uapi from '../src/index.js';
import {
  enums,
  ioctls,
  type LaidOutMember,
  layoutStruct,
  structNames,
  structs,
} from '../src/index.js';
import { vfioType1Structs } from '../src/schema/vfio-type1.js';
import { abi, testAbi } from './fixtures.js';

// The VFIO type1 structs and constants are not in the fixtures: vfio-type1.test.ts pins them.
const type1Structs = vfioType1Structs.map((s) => s.name);
const type1Enums = new Set(vfioType1Enums.map((e) => e.name));

const exported = uapi as unknown as Record<string, unknown>;
const structTable = structs as unknown as Record<string, uapi.StructDescriptor<unknown>>;
const ioctlTable = ioctls as unknown as Record<string, uapi.IoctlInfo>;

function unionsOf(members: readonly LaidOutMember[]): { offset: number; size: number }[] {
  const out: { offset: number; size: number }[] = [];
  for (const m of members) {
    if (m.kind === 'union') out.push({ offset: m.offset, size: m.size });
    else out.push(...unionsOf(m.children));
  }
  return out;
}

describe('structs of iommufd-abi.json (iommufd.h and the VFIO cdev structs)', () => {
  const names = Object.keys(abi.structs);

  it('covers all 38', () => {
    expect(names).toHaveLength(38);
    for (const name of names) expect(structTable[name], name).toBeDefined();
  });

  it.each(names)('%s: sizeof, alignof and the header match', (name) => {
    const fixture = abi.structs[name]!;
    const ours = structTable[name]!;
    expect(ours.sizeof).toBe(fixture.sizeof);
    expect(ours.alignof).toBe(fixture.alignof);
    expect(ours.header).toBe(fixture.header.replace(/ \(excerpt.*$/, ''));
  });

  it.each(names)(
    '%s: every field has the offset and size gcc gave it, and no field is extra',
    (name) => {
      const fixture = abi.structs[name]!;
      const ours = structTable[name]!.fields as Record<string, uapi.FieldInfo>;
      for (const f of fixture.flat_fields) {
        expect(ours[f.path], `${name}.${f.path}`).toMatchObject({ offset: f.offset, size: f.size });
      }
      expect(Object.keys(ours).sort()).toEqual(fixture.flat_fields.map((f) => f.path).sort());
    },
  );

  it.each(names)('%s: field types and anonymous unions match the declaration', (name) => {
    const fixture = abi.structs[name]!;
    const ours = structTable[name]!;
    const fields = ours.fields as Record<string, uapi.FieldInfo>;
    for (const f of fixture.fields) {
      if (f.kind === 'union') {
        expect(unionsOf(layoutStruct(ours.schema).members)).toContainEqual({
          offset: f.offset,
          size: f.size,
        });
        for (const m of f.members ?? [])
          expect(fields[m.name]).toMatchObject({ offset: m.offset, size: m.size });
      } else {
        expect(fields[f.name]?.cType, `${name}.${f.name}`).toBe(f.type);
      }
    }
  });

  it('element layouts of the pointed-to arrays match (allowed_iovas[])', () => {
    for (const [name, s] of Object.entries(abi.structs)) {
      for (const [field, pointee] of Object.entries(s.pointees ?? {})) {
        const element = structs.iommu_iova_range;
        expect(element.sizeof, `${name}.${field}[]`).toBe(pointee.elem_size);
        for (const f of pointee.element_fields) {
          const leaf = f.path.split('.').pop() as 'start' | 'last';
          expect(element.fields[leaf]).toMatchObject({ offset: f.offset_in_element, size: f.size });
        }
      }
    }
  });
});

describe('structs of iommufd-test-abi.json (iommufd_test.h)', () => {
  it('covers all 7', () => {
    expect(testAbi.structs).toHaveLength(7);
  });

  it.each(testAbi.structs.map((s) => [s.name, s] as const))(
    '%s: layout matches, nested payloads by dotted path',
    (name, fixture) => {
      const ours = structTable[name];
      expect(ours).toBeDefined();
      expect(ours!.sizeof).toBe(fixture.sizeof);
      expect(ours!.alignof).toBe(fixture.alignof);
      const fields = ours!.fields as Record<string, uapi.FieldInfo>;
      const named = fixture.fields.filter((f) => f.kind !== 'union');
      for (const f of named) {
        expect(fields[f.name], `${name}.${f.name}`).toMatchObject({
          offset: f.offset,
          size: f.size,
        });
        if (f.kind === 'struct') expect(fields[f.name]?.type).toBe('struct');
        else expect(fields[f.name]?.cType).toBe(f.type);
      }
      expect(Object.keys(fields).sort()).toEqual(named.map((f) => f.name).sort());
      for (const u of fixture.fields.filter((f) => f.kind === 'union')) {
        expect(unionsOf(layoutStruct(ours!.schema).members)).toContainEqual({
          offset: u.offset,
          size: u.size,
        });
      }
    },
  );

  it('the envelope ends `last` at the kernel minimum of IOMMU_TEST_CMD', () => {
    const cmd = testAbi.structs.find((s) => s.name === 'iommu_test_cmd')!;
    expect(ioctls.IOMMU_TEST_CMD.minSize).toBe(cmd.offsetofend_last_member);
    expect(ioctls.IOMMU_TEST_CMD.minSize).toBe(testAbi.kernel_dispatch.min_size);
    expect(ioctls.IOMMU_TEST_CMD.size).toBe(testAbi.kernel_dispatch.full_size);
  });

  it('every op payload and every input and output field the op uses exists', () => {
    for (const op of testAbi.op_semantics_hand_derived_from_selftest_c) {
      expect(exported[op.op], op.op).toBe(op.value);
      const fields = structs.iommu_test_cmd.fields as Record<string, uapi.FieldInfo>;
      expect(fields[op.payload_member], op.payload_member).toBeDefined();
      for (const f of [...op.inputs, ...op.outputs_written_back])
        expect(fields[f], f).toBeDefined();
    }
  });
});

describe('the struct table', () => {
  it('has exactly the 45 structs of the fixtures, and the 7 VFIO type1 structs', () => {
    const fixtureNames = [...Object.keys(abi.structs), ...testAbi.structs.map((s) => s.name)];
    expect(fixtureNames).toHaveLength(45);
    expect(type1Structs).toHaveLength(7);
    const expected = [...fixtureNames, ...type1Structs].sort();
    expect([...structNames].sort()).toEqual(expected);
    expect(Object.keys(structs).sort()).toEqual(expected);
  });
});

describe('ioctls', () => {
  const names = Object.keys(abi.ioctls);

  it.each(names)('%s: request, struct and minimum size match', (name) => {
    const fixture = abi.ioctls[name]!;
    const ours = ioctlTable[name];
    expect(ours).toBeDefined();
    expect(ours!.request).toBe(fixture.request);
    expect(exported[name]).toBe(fixture.request);
    expect(ours!.struct).toBe(fixture.struct);
    expect(ours!.size).toBe(fixture.struct_sizeof);
    expect(ours!.minSize).toBe(fixture.min_size);
    expect(ours!.minSizeField).toBe(fixture.min_size_field);
    expect(uapi._IOC_NR(ours!.request)).toBe(fixture.ioc_nr);
    expect(uapi._IOC_TYPE(ours!.request)).toBe(fixture.ioc_type);
    expect(uapi._IOC_DIR(ours!.request)).toBe(fixture.ioc_dir);
    expect(uapi._IOC_SIZE(ours!.request)).toBe(fixture.ioc_size);
    const extensions = Object.entries(fixture.min_size_when_flag ?? {}).map(([flagName, e]) => ({
      flagName,
      flag: exported[flagName],
      field: e.field,
      minSize: e.min_size,
    }));
    expect(ours!.flagExtensions).toEqual(extensions);
  });

  it('IOMMU_TEST_CMD matches the test header', () => {
    const decoded = testAbi.ioctl_decode.IOMMU_TEST_CMD!;
    expect(uapi.IOMMU_TEST_CMD).toBe(decoded.value);
    expect(uapi._IOC_NR(uapi.IOMMU_TEST_CMD)).toBe(decoded.nr);
    expect(uapi._IOC_TYPE(uapi.IOMMU_TEST_CMD)).toBe(decoded.type);
    expect(uapi._IOC_DIR(uapi.IOMMU_TEST_CMD)).toBe(decoded.dir);
  });

  it('has exactly the fixtures ioctls and IOMMU_TEST_CMD', () => {
    expect(Object.keys(ioctls).sort()).toEqual([...names, 'IOMMU_TEST_CMD'].sort());
  });
});

describe('constants', () => {
  const iommufdConstants = abi.enums.flatMap((e) => e.constants);
  const testConstants = testAbi.enums.flatMap((e) => e.constants);
  const defines = [...abi.defines, ...testAbi.defines, ...testAbi.dependencies_from_uapi_iommufd_h];
  const all = [...iommufdConstants, ...testConstants, ...defines];

  it.each(all.map((c) => [c.name, c.value] as const))('%s = %d', (name, value) => {
    expect(exported[name]).toBe(value);
  });

  it('every named enum of iommufd.h is in the enum table with the same constants', () => {
    for (const e of abi.enums) {
      const name = e.name === '(anonymous)' ? 'iommufd_cmd' : e.name;
      const expected = Object.fromEntries(e.constants.map((c) => [c.name, c.value]));
      expect(enums[name]?.constants, name).toEqual(expected);
    }
  });

  it('every enum constant of iommufd_test.h is in the enum table', () => {
    const tabled = Object.values(enums).flatMap((e) => Object.entries(e.constants));
    for (const c of testConstants) expect(tabled).toContainEqual([c.name, c.value]);
  });

  it('the enum table holds nothing that the fixtures do not have (the type1 ones aside)', () => {
    const known = new Map(all.map((c) => [c.name, c.value]));
    for (const e of Object.values(enums)) {
      if (type1Enums.has(e.name)) continue;
      for (const [name, value] of Object.entries(e.constants))
        expect(known.get(name), name).toBe(value);
    }
  });
});
