/**
 * A readable summary of what this package covers: the target kernel, the
 * structs with their sizes, the ioctls with their numbers and size rules, and
 * the VFIO container ioctls an iommufd fd answers.
 */
import { enums } from './enums.js';
import { errnos } from './errno.js';
import { ioctls } from './ioctls.js';
import { structNames, structs } from './structs.js';
import { vfioContainerIoctls } from './vfio-container.js';

/** The kernel release whose uAPI this package reproduces. */
export const TARGET_KERNEL = '6.17';

function pad(text: string, width: number): string {
  return text.length >= width ? `${text} ` : text + ' '.repeat(width - text.length);
}

/** The summary `npm start` prints, as text. */
export function formatUapiSummary(): string {
  const lines: string[] = [];
  const byHeader = new Map<string, number>();
  for (const name of structNames) {
    const header = structs[name].header;
    byHeader.set(header, (byHeader.get(header) ?? 0) + 1);
  }
  const enumList = Object.values(enums);
  const constants = enumList.reduce((n, e) => n + Object.keys(e.constants).length, 0);
  const ioctlList = Object.values(ioctls);
  lines.push(`iommufd uAPI of Linux ${TARGET_KERNEL}, as data (@iommufd-sim/uapi-types)`);
  lines.push('');
  lines.push(`  ${structNames.length} structs, byte-exact on Linux x86-64:`);
  for (const [header, count] of byHeader) lines.push(`    ${String(count).padStart(2)}  ${header}`);
  lines.push(
    `  ${ioctlList.length} ioctl requests, ${enumList.length} enums with ${constants} constants, ${errnos.size} errno numbers`,
  );
  lines.push('  integers are little-endian (x86-64 host order; __aligned_le64 on every host)');
  lines.push('');
  lines.push(
    `  ${pad('ioctl', 32)}${pad('request', 9)}${pad('struct', 32)}${pad('min', 5)}size  copy rule`,
  );
  for (const io of ioctlList) {
    const request = `0x${io.request.toString(16)}`;
    lines.push(
      `  ${pad(io.name, 32)}${pad(request, 9)}${pad(io.struct, 32)}${pad(String(io.minSize), 5)}${pad(String(io.size), 6)}${io.copyRule}`,
    );
  }
  lines.push('');
  lines.push('  VFIO container ioctls an iommufd fd answers itself (type1 emulation):');
  for (const io of Object.values(vfioContainerIoctls)) {
    const request = `0x${io.request.toString(16)}`;
    const argument = io.struct ?? `(${io.argument === 'none' ? 'no argument' : 'an integer'})`;
    const min = io.struct === undefined ? '' : String(io.minSize);
    lines.push(`  ${pad(io.name, 32)}${pad(request, 9)}${pad(argument, 32)}${min}`.trimEnd());
  }
  lines.push('');
  lines.push(`  ${pad('struct', 36)}${pad('size', 6)}what it is`);
  for (const name of structNames) {
    const s = structs[name];
    lines.push(`  ${pad(name, 36)}${pad(String(s.sizeof), 6)}${s.doc}`);
  }
  return lines.join('\n');
}
