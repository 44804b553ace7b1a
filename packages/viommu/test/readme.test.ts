import { describeReadmeExamples } from '../../../scripts/test-support/readme-examples.js';

describeReadmeExamples(
  [new URL('../README.md', import.meta.url)],
  new URL('./.readme-examples/', import.meta.url),
);
