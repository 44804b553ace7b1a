// This package's README. (The repository README's examples use several
// packages and run in the repository checks: scripts/test/readme.test.ts.)
import { describeReadmeExamples } from '../../../scripts/test-support/readme-examples.js';

describeReadmeExamples(
  [new URL('../README.md', import.meta.url)],
  new URL('./.readme-examples/', import.meta.url),
);
