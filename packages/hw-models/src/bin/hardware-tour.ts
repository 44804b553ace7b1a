#!/usr/bin/env node
// Prints the hardware tour; `npm start` at the repository root runs it.
import { formatHardwareTour } from '../tour.js';

console.log(formatHardwareTour());
