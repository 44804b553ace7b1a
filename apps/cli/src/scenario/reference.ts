/**
 * The scenario format as documentation: a text reference of every step and
 * field (`iommufd-sim steps`) and a JSON Schema (`iommufd-sim schema`), both
 * generated from the catalog the validator uses.
 */
import {
  COMMON_FIELDS,
  DEVICE_FIELDS,
  EXPECT_FIELDS,
  type FieldSpec,
  IOMMU_FIELDS,
  PROCESS_FIELDS,
  SAVE_FIELD,
  STEPS,
  TOP_FIELDS,
} from './catalog.js';

function fieldLine(name: string, f: FieldSpec): string {
  return `    ${name}${f.required === true ? ' (required)' : ''}: ${f.doc}`;
}

/** Every step and field, as text. */
export function formatStepReference(): string {
  const out = ['Scenario files (YAML)', '', 'Top level:'];
  for (const [n, f] of Object.entries(TOP_FIELDS)) out.push(fieldLine(n, f));
  out.push('', 'host.iommus entries:');
  for (const [n, f] of Object.entries(IOMMU_FIELDS)) out.push(fieldLine(n, f));
  out.push('', 'host.devices entries:');
  for (const [n, f] of Object.entries(DEVICE_FIELDS)) out.push(fieldLine(n, f));
  out.push('', 'processes entries:');
  for (const [n, f] of Object.entries(PROCESS_FIELDS)) out.push(fieldLine(n, f));
  out.push('', 'Every step may have:');
  for (const [n, f] of Object.entries(COMMON_FIELDS)) out.push(fieldLine(n, f));
  out.push('Steps that make a call may have:');
  for (const [n, f] of Object.entries(EXPECT_FIELDS)) out.push(fieldLine(n, f));
  out.push(
    fieldLine('save', SAVE_FIELD).replace('    save', '    save (steps with an output struct)'),
  );
  for (const s of STEPS) {
    out.push(
      '',
      `- ${s.kind}: ${s.main.doc}`,
      `    ${s.doc}`,
      `    calls: ${s.calls}${s.output === undefined ? '' : `; save from: ${s.output}`}`,
    );
    for (const [n, f] of Object.entries(s.fields)) out.push(fieldLine(n, f));
  }
  return `${out.join('\n')}\n`;
}

function schemaOf(f: FieldSpec): Record<string, unknown> {
  const number = { oneOf: [{ type: 'integer' }, { type: 'string' }] };
  switch (f.type) {
    case 'expr':
    case 'symbol':
      return { ...number, description: f.doc };
    case 'flags':
      return { oneOf: [...number.oneOf, { type: 'array', items: number }], description: f.doc };
    case 'exprs':
      return { type: 'array', items: number, description: f.doc };
    case 'bool':
      return { type: 'boolean', description: f.doc };
    case 'errnos':
      return {
        oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
        description: f.doc,
      };
    case 'choice':
      return { enum: f.choices ?? [], description: f.doc };
    case 'struct':
      return { type: 'object', required: ['struct'], description: f.doc };
    case 'save':
      return { type: 'object', additionalProperties: { type: 'string' }, description: f.doc };
    case 'steps':
      return { type: 'array', items: { $ref: '#/$defs/step' }, description: f.doc };
    case 'none':
      return { type: 'null', description: f.doc };
    default:
      return { type: 'string', description: f.doc };
  }
}

function objectSchema(
  fields: Readonly<Record<string, FieldSpec>>,
  extra = false,
): Record<string, unknown> {
  return {
    type: 'object',
    properties: Object.fromEntries(Object.entries(fields).map(([n, f]) => [n, schemaOf(f)])),
    required: Object.entries(fields)
      .filter(([, f]) => f.required === true)
      .map(([n]) => n),
    additionalProperties: extra,
  };
}

/** A JSON Schema (2020-12) of scenario files. It checks shapes; the validator checks meaning. */
export function scenarioJsonSchema(): Record<string, unknown> {
  const steps = STEPS.map((s) => {
    const fields: Record<string, FieldSpec> = {
      [s.kind]: { ...s.main, required: true },
      ...COMMON_FIELDS,
      ...s.fields,
    };
    if (s.expect !== 'none') Object.assign(fields, EXPECT_FIELDS);
    if (s.output !== undefined) fields.save = SAVE_FIELD;
    // An ioctl step's other keys are the request's struct fields.
    return { title: s.kind, description: s.doc, ...objectSchema(fields, s.kind === 'ioctl') };
  });
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'iommufd-sim scenario',
    type: 'object',
    properties: {
      name: schemaOf(TOP_FIELDS.name as FieldSpec),
      description: schemaOf(TOP_FIELDS.description as FieldSpec),
      host: {
        type: 'object',
        properties: {
          iommus: { type: 'array', items: objectSchema(IOMMU_FIELDS) },
          devices: { type: 'array', items: objectSchema(DEVICE_FIELDS) },
          selftest: { type: 'boolean' },
        },
        additionalProperties: false,
      },
      processes: { type: 'array', items: objectSchema(PROCESS_FIELDS) },
      steps: { type: 'array', items: { $ref: '#/$defs/step' } },
    },
    required: ['steps'],
    additionalProperties: false,
    $defs: { step: { anyOf: steps } },
  };
}
