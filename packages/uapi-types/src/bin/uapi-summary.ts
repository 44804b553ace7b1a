#!/usr/bin/env node
// Prints what the uAPI package covers; `npm start` at the repository root runs it.
import { formatUapiSummary } from '../summary.js';

console.log(formatUapiSummary());
