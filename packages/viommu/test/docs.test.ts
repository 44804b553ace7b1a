import { describeExportDocs } from '../../../scripts/test-support/exported-docs.js';

describeExportDocs(new URL('../src/index.ts', import.meta.url));
