// `npm run generate`: rewrites src/generated/codecs.ts from the struct schemas.
import { writeFileSync } from 'node:fs';
import { structSchemas } from '../src/schema/index.js';
import { renderCodecs } from './codegen.js';

const target = new URL('../src/generated/codecs.ts', import.meta.url);
writeFileSync(target, renderCodecs(structSchemas));
console.log(`wrote ${structSchemas.length} struct codecs to src/generated/codecs.ts`);
