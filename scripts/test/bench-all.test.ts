import { describe, expect, it } from 'vitest';
import {
  aggregateBench,
  benchMarkdown,
  formatNumber,
  normaliseResults,
  parseBenchArgs,
  referencesOf,
  unitOf,
} from '../bench-all.mjs';

// Samples shaped as each package's bench/results.json is (same keys, made-up numbers).
const uapiTypes = {
  iommu_ioas_map_encode_ns: 80,
  iommu_ioas_map_decode_ns: 85,
  iommu_ioas_map_encode_decode_ns: 165,
  iommu_ioas_map_ref_dataview_per_call_encode_decode_ns: 458,
  iommu_ioas_map_ref_ready_dataview_encode_decode_ns: 138,
  iommu_ioas_map_ratio_vs_ready_dataview: 1.2,
};
const hwModels = {
  calib_int_add_ns: 2.25,
  ref_map4k_ns_per_page: 75,
  ref_translate_ns: 210,
  ref_table_bytes_4gib: 8413184,
  map4k_ns_per_page: 11.2,
  translate_ns: 247,
  map_1tib_huge_ms: 0.02,
  table_bytes_4gib: 8413184,
  smmuv3_map4k_ns_per_page: 18.8,
  smmuv3_translate_ns: 447,
  amdv1_map_1tib_huge_ms: 0.14,
  tlb_hit_ns: 63,
  ref_tlb_hit_ns: 54,
};
const faultQueue = {
  spsc_local_mrec_s: 22,
  spsc_local_per_record_mrec_s: 7.7,
  mpsc_local_mrec_s: 35,
  spsc_local_copy_mrec_s: 4.9,
  ref_array_local_mrec_s: 11,
  spsc_workers_mrec_s: 10,
  ref_postmessage_workers_mrec_s: 8,
  mpsc4_workers_mrec_s: 9,
  ref_postmessage_mpsc4_workers_mrec_s: 7.5,
  spsc_local_vs_ref_array_ratio: 2,
  spsc_workers_vs_ref_postmessage_ratio: 1.25,
};
const iommufdCore = {
  calib_int_add_ns: 3.6,
  ioas_map_ns_per_page: 288,
  ref_ioas_map_ns_per_page: 3165,
  auto_map_unmap_ops_s: 45000,
  ref_auto_map_unmap_ops_s: 9000,
  bytes_per_area: 551,
  ref_bytes_per_area: 106,
};

type Row = ReturnType<typeof normaliseResults>['rows'][number];
const pairs = (rows: readonly Row[]) => rows.map((r) => [r.figure, r.referenceFigure]);

describe('the bench report: finding each figure its reference', () => {
  it('ref_<figure>, as iommufd-core names them', () => {
    const { rows, machine } = normaliseResults('@iommufd-sim/iommufd-core', iommufdCore);
    expect(pairs(rows)).toEqual([
      ['ioas_map_ns_per_page', 'ref_ioas_map_ns_per_page'],
      ['auto_map_unmap_ops_s', 'ref_auto_map_unmap_ops_s'],
      ['bytes_per_area', 'ref_bytes_per_area'],
    ]);
    expect(machine).toEqual({ calib_int_add_ns: 3.6 });
  });

  it('a variant prefix shares the unprefixed reference (hw-models), and a figure may have none', () => {
    const { rows } = normaliseResults('@iommufd-sim/hw-models', hwModels);
    expect(pairs(rows)).toEqual([
      ['map4k_ns_per_page', 'ref_map4k_ns_per_page'],
      ['translate_ns', 'ref_translate_ns'],
      ['map_1tib_huge_ms', null],
      ['table_bytes_4gib', 'ref_table_bytes_4gib'],
      ['smmuv3_map4k_ns_per_page', 'ref_map4k_ns_per_page'],
      ['smmuv3_translate_ns', 'ref_translate_ns'],
      ['amdv1_map_1tib_huge_ms', null],
      ['tlb_hit_ns', 'ref_tlb_hit_ns'],
    ]);
    expect(rows.find((r) => r.figure === 'map_1tib_huge_ms')?.note).toBe('no reference measured');
  });

  it('a subject before _ref_ and a kind after it (uapi-types): every reference, on the right figure', () => {
    const { rows, ratios } = normaliseResults('@iommufd-sim/uapi-types', uapiTypes);
    expect(pairs(rows)).toEqual([
      ['iommu_ioas_map_encode_ns', null],
      ['iommu_ioas_map_decode_ns', null],
      ['iommu_ioas_map_encode_decode_ns', 'iommu_ioas_map_ref_dataview_per_call_encode_decode_ns'],
      ['iommu_ioas_map_encode_decode_ns', 'iommu_ioas_map_ref_ready_dataview_encode_decode_ns'],
    ]);
    // The package's own ratio is kept aside: the report computes its own.
    expect(ratios).toEqual({ iommu_ioas_map_ratio_vs_ready_dataview: 1.2 });
  });

  it('a kind after ref_ (fault-queue): the closest reference wins, and the extra table fills gaps', () => {
    const { rows, ratios } = normaliseResults('@iommufd-sim/fault-queue', faultQueue);
    expect(pairs(rows)).toEqual([
      ['spsc_local_mrec_s', 'ref_array_local_mrec_s'],
      ['spsc_local_per_record_mrec_s', 'ref_array_local_mrec_s'],
      ['mpsc_local_mrec_s', 'ref_array_local_mrec_s'],
      ['spsc_local_copy_mrec_s', 'ref_array_local_mrec_s'],
      ['spsc_workers_mrec_s', 'ref_postmessage_workers_mrec_s'],
      ['mpsc4_workers_mrec_s', 'ref_postmessage_mpsc4_workers_mrec_s'],
    ]);
    expect(Object.keys(ratios)).toEqual([
      'spsc_local_vs_ref_array_ratio',
      'spsc_workers_vs_ref_postmessage_ratio',
    ]);
    // Without the extra table, the per-record figures stand alone: names alone do not pair them.
    const bare = referencesOf(Object.keys(faultQueue), {});
    expect(bare.get('spsc_local_per_record_mrec_s')).toEqual([]);
  });

  it('never pairs on a unit alone', () => {
    const refs = referencesOf(['encode_ns', 'ref_translate_ns', 'x_mrec_s', 'ref_y_mrec_s'], {});
    expect(refs.get('encode_ns')).toEqual([]);
    expect(refs.get('x_mrec_s')).toEqual([]);
  });

  it('lists a reference nobody claims on its own', () => {
    const { rows } = normaliseResults('p', { ref_lonely_ns: 5 });
    expect(rows).toMatchObject([
      { figure: 'ref_lonely_ns', model: 5, reference: null, ratio: null },
    ]);
  });
});

describe('the bench report: figures, units and ratios', () => {
  it('computes model / reference and says which side is ahead, in the unit direction', () => {
    const { rows } = normaliseResults('@iommufd-sim/iommufd-core', iommufdCore);
    const map = rows.find((r) => r.figure === 'ioas_map_ns_per_page');
    expect(map).toMatchObject({
      package: '@iommufd-sim/iommufd-core',
      model: 288,
      reference: 3165,
      unit: 'ns/page',
      better: 'lower',
    });
    expect(map?.ratio).toBeCloseTo(288 / 3165);
    expect(map?.note).toBe(
      'reference: ref_ioas_map_ns_per_page; model 11x better (lower is better)',
    );
    const ops = rows.find((r) => r.figure === 'auto_map_unmap_ops_s');
    expect(ops?.note).toContain('model 5x better (higher is better)');
    const bytes = rows.find((r) => r.figure === 'bytes_per_area');
    expect(bytes?.note).toContain('reference 5.2x better (lower is better)');
    const tables = normaliseResults('h', hwModels).rows.find(
      (r) => r.figure === 'table_bytes_4gib',
    );
    expect(tables?.note).toContain('level with the reference');
  });

  it('reads units from the names', () => {
    expect(unitOf('map4k_ns_per_page')).toEqual({ unit: 'ns/page', better: 'lower' });
    expect(unitOf('translate_ns')).toEqual({ unit: 'ns', better: 'lower' });
    expect(unitOf('map_1tib_huge_ms')).toEqual({ unit: 'ms', better: 'lower' });
    expect(unitOf('auto_map_unmap_ops_s')).toEqual({ unit: 'ops/s', better: 'higher' });
    expect(unitOf('spsc_local_mrec_s')).toEqual({ unit: 'M records/s', better: 'higher' });
    expect(unitOf('table_bytes_4gib')).toEqual({ unit: 'bytes', better: 'lower' });
    expect(unitOf('something')).toEqual({ unit: '', better: 'lower' });
  });

  it('takes figures written as objects or as an array, and says what it could not read', () => {
    const objects = normaliseResults('p', {
      walk_ns: { model: 40, reference: 80, note: 'a walk' },
      size: { value: 3, unit: 'pages' },
      broken: 'n/a',
    });
    expect(objects.rows).toMatchObject([
      {
        figure: 'walk_ns',
        model: 40,
        reference: 80,
        ratio: 0.5,
        unit: 'ns',
        note: 'a walk; model 2x better (lower is better)',
      },
      { figure: 'size', model: 3, reference: null, unit: 'pages' },
    ]);
    expect(objects.unreadable).toEqual(['broken']);
    const array = normaliseResults('p', [
      { figure: 'a_ns', model: 1, reference: 2 },
      { name: 'b_ms', value: 3 },
    ]);
    expect(array.rows.map((r) => [r.figure, r.model, r.reference])).toEqual([
      ['a_ns', 1, 2],
      ['b_ms', 3, null],
    ]);
  });

  it('formats numbers to three significant digits, whole above 100', () => {
    expect(
      [22.14, 0.026919, 8413184, 45281.6, 1.005, 0, null, Number.NaN].map(formatNumber),
    ).toEqual(['22.1', '0.0269', '8413184', '45282', '1', '0', '-', '-']);
  });
});

describe('the bench report: every package in one JSON and one table', () => {
  const report = aggregateBench(
    [
      { package: '@iommufd-sim/uapi-types', results: uapiTypes, status: 'ok', seconds: 20 },
      { package: '@iommufd-sim/hw-models', results: hwModels, status: 'ok', seconds: 95 },
      { package: '@iommufd-sim/fault-queue', results: faultQueue, status: 'ok' },
      { package: '@iommufd-sim/iommufd-core', results: iommufdCore, status: 'ok' },
      { package: '@iommufd-sim/viommu', results: undefined, status: 'failed (exit 1)' },
    ],
    { generatedAt: '2026-01-01T00:00:00.000Z', node: '20.20.0' },
  );

  it('has a row per figure and reference, and a line per package', () => {
    expect(report.rows).toHaveLength(4 + 8 + 6 + 3);
    expect(report.packages.map((p) => [p.name, p.figures, p.status])).toEqual([
      ['@iommufd-sim/uapi-types', 4, 'ok'],
      ['@iommufd-sim/hw-models', 8, 'ok'],
      ['@iommufd-sim/fault-queue', 6, 'ok'],
      ['@iommufd-sim/iommufd-core', 3, 'ok'],
      ['@iommufd-sim/viommu', 0, 'failed (exit 1)'],
    ]);
    expect(report.generatedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('renders the Markdown table with every column', () => {
    const md = benchMarkdown(report);
    const lines = md.split('\n');
    expect(lines).toContain('| figure | package | model | reference | ratio | unit | note |');
    expect(lines).toContain(
      '| `ioas_map_ns_per_page` | iommufd-core | 288 | 3165 | 0.091 | ns/page | reference: ref_ioas_map_ns_per_page; model 11x better (lower is better) |',
    );
    expect(lines).toContain(
      '| `map_1tib_huge_ms` | hw-models | 0.02 | - | - | ms | no reference measured |',
    );
    expect(lines).toContain(
      '- `@iommufd-sim/hw-models`: ok; 8 figures; 95 s; machine: calib_int_add_ns 2.25',
    );
    expect(lines).toContain('- `@iommufd-sim/viommu`: failed (exit 1); 0 figures');
    expect(lines.filter((l) => l.startsWith('| `'))).toHaveLength(report.rows.length);
  });
});

describe('the bench command line', () => {
  it('runs and writes to bench-results by default; --no-run and --out change that', () => {
    expect(parseBenchArgs([], '/repo')).toEqual({ run: true, out: '/repo/bench-results' });
    expect(parseBenchArgs(['--no-run', '--out', '/tmp/x'], '/repo')).toEqual({
      run: false,
      out: '/tmp/x',
    });
    expect(() => parseBenchArgs(['--fast'], '/repo')).toThrow(/unknown argument '--fast'/);
  });
});
