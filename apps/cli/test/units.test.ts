/** The number language, the struct decoding, the catalog and the helpers. */
import { enums, IOMMU_TEST_OP_MOCK_DOMAIN } from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { Progress } from '../src/cli/progress.js';
import { HANDLED_KINDS } from '../src/run/runner.js';
import { STEPS } from '../src/scenario/catalog.js';
import { evalExpr, parseExpr, UnsetVariable } from '../src/scenario/expr.js';
import { scenarioJsonSchema } from '../src/scenario/reference.js';
import { enumConstant, FIELD_ENUMS } from '../src/uapi/field-enums.js';
import {
  changedFields,
  decodeStruct,
  formatStruct,
  unknownFieldEnums,
} from '../src/uapi/struct-text.js';
import { describeBytes, fromHex, toHex } from '../src/util/hex.js';
import { formatSize, formatSizeExact } from '../src/util/units.js';

const value = (text: string | bigint, vars: Record<string, bigint> = {}): bigint => {
  const e = parseExpr(text);
  if (typeof e === 'string') throw new Error(e);
  return evalExpr(e, (n) => vars[n]);
};

describe('numbers in scenario files', () => {
  it('integers, hex, underscores, sizes, constants, variables and arithmetic', () => {
    expect(value('4096')).toBe(4096n);
    expect(value('0x1_0000_0000')).toBe(1n << 32n);
    expect(value('4 GiB')).toBe(4n << 30n);
    expect(value('2MiB')).toBe(2n << 20n);
    expect(value('64K')).toBe(65536n);
    expect(value('1.5 KiB')).toBe(1536n);
    expect(value('MOCK_APERTURE_START')).toBe(0x1000000n);
    expect(value('$ram + 2 MiB', { ram: 0x1000n })).toBe(0x201000n);
    expect(value('3 * 4 KiB - (1 + 1)')).toBe(12286n);
    expect(value('-1')).toBe(-1n);
    expect(value(0xffffffffffffffffn)).toBe(0xffffffffffffffffn);
    expect(value('$a.fd', { 'a.fd': 7n })).toBe(7n);
  });

  it('says what is wrong', () => {
    expect(parseExpr('4 GiBs')).toMatch(/unknown unit 'GiBs'/);
    expect(parseExpr('1.5')).toMatch(/not a whole number/);
    expect(parseExpr('FOO')).toMatch(
      /'FOO' is not a number, a size, a \$variable or a uAPI constant/,
    );
    expect(parseExpr('(1 + 2')).toMatch(/not closed/);
    expect(parseExpr('1 2')).toMatch(/unexpected text/);
    expect(parseExpr('')).toBe('empty expression');
    expect(parseExpr(1.5)).toMatch(/not an integer/);
    const e = parseExpr('$x');
    expect(() => typeof e !== 'string' && evalExpr(e, () => undefined)).toThrow(UnsetVariable);
  });
});

describe('struct text', () => {
  it('decodes with flag and enum names, hides zero reserved fields, shows what changed', () => {
    const before = decodeStruct('iommu_hwpt_alloc', new Uint8Array(48));
    const after = { ...before, out_hwpt_id: 5, flags: 3 };
    expect(formatStruct('iommu_hwpt_alloc', after)).toBe(
      '{size=0, flags=IOMMU_HWPT_ALLOC_NEST_PARENT|IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id=0, pt_id=0, out_hwpt_id=5, data_type=IOMMU_HWPT_DATA_NONE, data_len=0, data_uptr=0x0, fault_id=0}',
    );
    expect(changedFields(before, after)).toEqual({ out_hwpt_id: 5, flags: 3 });
  });

  it('shows only the union member an iommu_test_cmd op uses', () => {
    const cmd = decodeStruct('iommu_test_cmd', new Uint8Array(72));
    expect(formatStruct('iommu_test_cmd', { ...cmd, op: IOMMU_TEST_OP_MOCK_DOMAIN })).toBe(
      '{size=0, op=IOMMU_TEST_OP_MOCK_DOMAIN, id=0, mock_domain={out_stdev_id=0, out_hwpt_id=0, out_idev_id=0}, last=0}',
    );
  });

  it('names constants by their tails and every field-enum entry exists', () => {
    const flags = enums.iommufd_ioas_map_flags;
    expect(flags && enumConstant(flags, 'READABLE')).toBe(4);
    expect(flags && enumConstant(flags, 'IOMMU_IOAS_MAP_FIXED_IOVA')).toBe(1);
    expect(unknownFieldEnums(FIELD_ENUMS)).toEqual([]);
  });
});

describe('the catalog', () => {
  it('every step kind has a handler and every handler a catalog entry', () => {
    expect([...HANDLED_KINDS].sort()).toEqual(STEPS.map((s) => s.kind).sort());
  });

  it('the JSON Schema has one alternative per step', () => {
    const schema = scenarioJsonSchema() as { $defs: { step: { anyOf: unknown[] } } };
    expect(schema.$defs.step.anyOf).toHaveLength(STEPS.length);
  });
});

describe('helpers', () => {
  it('hex and sizes', () => {
    expect(toHex(Uint8Array.of(0xca, 0xfe))).toBe('cafe');
    expect(fromHex('ca fe')).toEqual(Uint8Array.of(0xca, 0xfe));
    expect(fromHex('abc')).toBeUndefined();
    expect(describeBytes(new TextEncoder().encode('hi'))).toBe('68 69 "hi"');
    expect(formatSize(4n << 30n)).toBe('4 GiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSizeExact((4n << 30n) + 4096n)).toBe('4 GiB (4294971392 bytes)');
    expect(formatSizeExact(2n << 20n)).toBe('2 MiB');
  });

  it('progress: a line per step without a terminal, an in-place line on one, nothing when off', () => {
    const lines: string[] = [];
    const plain = new Progress({ write: (t) => lines.push(t), isTTY: false }, true);
    plain.step(0, 2, 'first');
    plain.step(2, 2, 'done');
    plain.done();
    expect(lines).toEqual(['[0/2] first\n']);
    const tty: string[] = [];
    const p = new Progress({ write: (t) => tty.push(t), isTTY: true }, true);
    p.step(1, 2, 'second');
    p.done();
    expect(tty).toEqual(['\r\x1b[2K[1/2] second', '\r\x1b[2K']);
    const off: string[] = [];
    new Progress({ write: (t) => off.push(t), isTTY: false }, false).step(0, 1, 'x');
    expect(off).toEqual([]);
  });
});
