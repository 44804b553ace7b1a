import { describePackageWiring } from '../../../scripts/test-support/package-wiring.js';

describePackageWiring(new URL('../package.json', import.meta.url));
