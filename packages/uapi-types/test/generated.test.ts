// The generated codecs must be exactly what the schema renders to today.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderCodecs } from '../scripts/codegen.js';
import { structSchemas } from '../src/schema/index.js';

describe('src/generated/codecs.ts', () => {
  it('is up to date with the schema (run `npm run generate` if not)', () => {
    const committed = readFileSync(new URL('../src/generated/codecs.ts', import.meta.url), 'utf8');
    expect(committed === renderCodecs(structSchemas)).toBe(true);
  });
});
