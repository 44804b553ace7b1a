#!/usr/bin/env node
// The iommufd-sim program: see README.md or `iommufd-sim --help`.
import { main, processIo } from './cli/main.js';

process.exitCode = main(process.argv.slice(2), processIo());
