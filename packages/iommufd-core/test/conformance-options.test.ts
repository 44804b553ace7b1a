/**
 * Conformance: IOMMU_OPTION (catalog 2.10) and IOMMU_IOAS_CHANGE_PROCESS
 * (2.11).
 */
import {
  EADDRINUSE,
  EBUSY,
  EINVAL,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EPERM,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Process } from '../src/index.js';
import {
  checkMap,
  copy,
  destroy,
  ioasAlloc,
  iovaRanges,
  map,
  mockDomain,
  option,
  PAGE,
  setup,
  unmap,
} from './helpers.js';
import {
  changeProcess,
  closeClean,
  expectErrno,
  ioasReport,
  MOCK_START,
  mapFile,
} from './helpers-a.js';

const RLIMIT = IOMMU_OPTION_RLIMIT_MODE;
const HUGE = IOMMU_OPTION_HUGE_PAGES;
const GET = IOMMU_OPTION_OP_GET;
const SET = IOMMU_OPTION_OP_SET;

/** IOMMU_OPTION with every field chosen by the caller (the helper fixes __reserved at 0). */
function rawOption(
  proc: Process,
  fd: number,
  fields: {
    option_id: number;
    op: number;
    object_id?: number;
    val64?: bigint;
    __reserved?: number;
  },
): { rc: number; val64: bigint } {
  const b = structs.iommu_option.encode({ size: 24, ...fields });
  const rc = proc.ioctl(fd, IOMMU_OPTION, b);
  return { rc, val64: structs.iommu_option.decode(b).val64 };
}

describe('2.10 IOMMU_OPTION', () => {
  it('95: RLIMIT_MODE GET on a fresh fd → 0 with val64 = 0 written back', () => {
    const { host, proc, fd } = setup();
    expect(option(proc, fd, RLIMIT, GET, 0, 1n)).toEqual({ rc: 0, val64: 0n });
    expect(proc.inspect(fd)?.accountMode).toBe('user');
    closeClean(host, proc, fd);
  });

  it('96: RLIMIT_MODE SET 1 → 0, GET → 1, SET 2 → EINVAL (mode kept), SET 0 → 0, GET → 0', () => {
    const { host, proc, fd } = setup();
    expect(option(proc, fd, RLIMIT, SET, 0, 1n).rc).toBe(0);
    expect(option(proc, fd, RLIMIT, GET, 0, 7n)).toEqual({ rc: 0, val64: 1n });
    expect(proc.inspect(fd)?.accountMode).toBe('mm');
    const bad = option(proc, fd, RLIMIT, SET, 0, 2n);
    expectErrno(proc, bad.rc, EINVAL, 'IOMMU_OPTION');
    expect(option(proc, fd, RLIMIT, GET, 0).val64).toBe(1n);
    expectErrno(proc, option(proc, fd, RLIMIT, SET, 0, 1n << 32n).rc, EINVAL, 'IOMMU_OPTION');
    expect(option(proc, fd, RLIMIT, SET, 0, 0n).rc).toBe(0);
    expect(option(proc, fd, RLIMIT, GET, 0, 7n)).toEqual({ rc: 0, val64: 0n });
    // The mode is per context: another fd starts at 0.
    expect(option(proc, fd, RLIMIT, SET, 0, 1n).rc).toBe(0);
    const fd2 = proc.open('/dev/iommu');
    expect(option(proc, fd2, RLIMIT, GET, 0, 7n).val64).toBe(0n);
    closeClean(host, proc, fd2);
    closeClean(host, proc, fd);
  });

  it('96: in mode 1 a process without CAP_IPC_LOCK is charged per process (VmLck), in mode 0 per user', () => {
    const host = createHost({ selftest: true });
    const proc = host.createProcess({ privileged: true, ipcLock: false });
    const buf = proc.mmap(2 * 4096);
    for (const mode of [0n, 1n]) {
      const fd = proc.open('/dev/iommu');
      expect(option(proc, fd, RLIMIT, SET, 0, mode).rc).toBe(0);
      const ioas = ioasAlloc(proc, fd);
      expect(mockDomain(proc, fd, ioas).rc).toBe(0);
      expect(map(proc, fd, ioas, buf, 2n * PAGE).rc).toBe(0);
      const s = proc.status();
      expect(s.pinnedBytes).toBe(2n * PAGE);
      expect(s.lockedBytes).toBe(mode === 1n ? 2n * PAGE : 0n);
      expect(s.userLockedBytes).toBe(mode === 1n ? 0n : 2n * PAGE);
      closeClean(host, proc, fd);
      expect(proc.status()).toMatchObject({
        pinnedBytes: 0n,
        lockedBytes: 0n,
        userLockedBytes: 0n,
      });
    }
  });

  it('97: RLIMIT_MODE SET while any object exists → EBUSY; works again once the table is empty', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    for (const v of [0n, 1n, 2n]) {
      expectErrno(proc, option(proc, fd, RLIMIT, SET, 0, v).rc, EBUSY, 'IOMMU_OPTION');
    }
    expect(option(proc, fd, RLIMIT, GET, 0).val64).toBe(0n);
    expect(destroy(proc, fd, ioas)).toBe(0);
    expect(option(proc, fd, RLIMIT, SET, 0, 1n).rc).toBe(0);
    expect(option(proc, fd, RLIMIT, GET, 0).val64).toBe(1n);
    closeClean(host, proc, fd);
  });

  it('97: RLIMIT_MODE SET without CAP_SYS_RESOURCE → EPERM (before EBUSY); GET is allowed', () => {
    const host = createHost({ selftest: true });
    const proc = host.createProcess({ privileged: false });
    const fd = proc.open('/dev/iommu');
    expectErrno(proc, option(proc, fd, RLIMIT, SET, 0, 1n).rc, EPERM, 'IOMMU_OPTION');
    expect(option(proc, fd, RLIMIT, GET, 0, 5n)).toEqual({ rc: 0, val64: 0n });
    ioasAlloc(proc, fd);
    expectErrno(proc, option(proc, fd, RLIMIT, SET, 0, 1n).rc, EPERM, 'IOMMU_OPTION');
    // Root without CAP_IPC_LOCK still has CAP_SYS_RESOURCE.
    const root = host.createProcess({ privileged: true, ipcLock: false });
    const fd2 = root.open('/dev/iommu');
    expect(option(root, fd2, RLIMIT, SET, 0, 1n).rc).toBe(0);
    closeClean(host, root, fd2);
    closeClean(host, proc, fd);
  });

  it('97: RLIMIT_MODE with object_id≠0 → EOPNOTSUPP, for GET and SET; nothing written back', () => {
    const { host, proc, fd } = setup();
    for (const op of [GET, SET]) {
      for (const id of [1, 0xffffffff]) {
        const r = option(proc, fd, RLIMIT, op, id, 1n);
        expectErrno(proc, r.rc, EOPNOTSUPP, 'IOMMU_OPTION');
        expect(r.val64).toBe(1n);
      }
    }
    expect(option(proc, fd, RLIMIT, GET, 0).val64).toBe(0n);
    closeClean(host, proc, fd);
  });

  it('98: HUGE_PAGES with object_id 0, or an id that is not an IOAS, GET or SET → ENOENT', () => {
    const { host, proc, fd } = setup();
    for (const op of [GET, SET]) {
      const r = option(proc, fd, HUGE, op, 0, 77n);
      expectErrno(proc, r.rc, ENOENT, 'IOMMU_OPTION');
      expect(r.val64).toBe(77n);
    }
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    for (const id of [md.stdevId, md.idevId, md.hwptId, 99]) {
      expectErrno(proc, option(proc, fd, HUGE, GET, id).rc, ENOENT, 'IOMMU_OPTION');
      expectErrno(proc, option(proc, fd, HUGE, SET, id, 0n).rc, ENOENT, 'IOMMU_OPTION');
    }
    expect(ioasReport(proc, fd, ioas)?.hugePages).toBe(true);
    closeClean(host, proc, fd);
  });

  it('99: HUGE_PAGES GET → 1; SET 0 → 0; GET → 0; SET 2 → EINVAL; SET 1 → 0 (ioas_option_huge_pages)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(option(proc, fd, HUGE, GET, ioas, 3n)).toEqual({ rc: 0, val64: 1n });
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    expect(option(proc, fd, HUGE, GET, ioas, 3n)).toEqual({ rc: 0, val64: 0n });
    // HUGE_PAGES=0 raises the IOAS alignment to PAGE_SIZE.
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(PAGE);
    expectErrno(proc, option(proc, fd, HUGE, SET, ioas, 2n).rc, EINVAL, 'IOMMU_OPTION');
    expect(option(proc, fd, HUGE, GET, ioas, 3n).val64).toBe(0n);
    expect(option(proc, fd, HUGE, SET, ioas, 1n).rc).toBe(0);
    expect(option(proc, fd, HUGE, GET, ioas, 3n).val64).toBe(1n);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    // The option is per IOAS.
    const other = ioasAlloc(proc, fd);
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    expect(option(proc, fd, HUGE, GET, other, 3n).val64).toBe(1n);
    closeClean(host, proc, fd);
  });

  it('100: HUGE_PAGES SET 0 with a page-aligned area → 0; a later map with a VA offset of 2048 → EINVAL (ioas_align_change)', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4 * 4096);
    expect(map(proc, fd, ioas, buf, PAGE, MOCK_START).rc).toBe(0);
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    const bad = map(proc, fd, ioas, buf + 2048n, PAGE, MOCK_START + PAGE);
    expectErrno(proc, bad.rc, EINVAL, 'IOMMU_IOAS_MAP');
    expect(bad.iova).toBe(MOCK_START + PAGE); // not written back
    expect(ioasReport(proc, fd, ioas)?.areas.length).toBe(1);
    // A length or iova that is not page aligned fails too; aligned ones work.
    expectErrno(proc, map(proc, fd, ioas, buf, 2048n, MOCK_START + PAGE).rc, EINVAL);
    expectErrno(proc, map(proc, fd, ioas, buf, PAGE, MOCK_START + PAGE + 2048n).rc, EINVAL);
    expect(map(proc, fd, ioas, buf + PAGE, PAGE, MOCK_START + PAGE).rc).toBe(0);
    // Setting 0 again is fine.
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    closeClean(host, proc, fd);
  });

  it('101: HUGE_PAGES SET 0 with an area whose VA offset is 2048 → EADDRINUSE, nothing changes', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const buf = proc.mmap(4 * 4096);
    expect(map(proc, fd, ioas, buf, PAGE, MOCK_START).rc).toBe(0);
    expect(map(proc, fd, ioas, buf + 2048n, PAGE, MOCK_START + PAGE).rc).toBe(0);
    expectErrno(proc, option(proc, fd, HUGE, SET, ioas, 0n).rc, EADDRINUSE, 'IOMMU_OPTION');
    expect(option(proc, fd, HUGE, GET, ioas).val64).toBe(1n);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(1n);
    expect(ioasReport(proc, fd, ioas)?.hugePages).toBe(true);
    // Unmapping the misaligned area lets it through.
    expect(unmap(proc, fd, ioas, MOCK_START + PAGE, PAGE).rc).toBe(0);
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    expect(unmap(proc, fd, ioas, MOCK_START, PAGE).rc).toBe(0);
    closeClean(host, proc, fd);
  });

  it('102: HUGE_PAGES SET 0 with a domain attached and ≥1 area → EINVAL; with a domain and no area → 0', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    const buf = proc.mmap(2 * 4096);
    expect(map(proc, fd, ioas, buf, 2n * PAGE, MOCK_START).rc).toBe(0);
    expectErrno(proc, option(proc, fd, HUGE, SET, ioas, 0n).rc, EINVAL, 'IOMMU_OPTION');
    expect(option(proc, fd, HUGE, GET, ioas).val64).toBe(1n);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(2048n);
    expect(checkMap(proc, fd, md.hwptId, MOCK_START, 2n * PAGE, buf)).toBe(0);
    // SET 1 is always fine.
    expect(option(proc, fd, HUGE, SET, ioas, 1n).rc).toBe(0);
    expect(unmap(proc, fd, ioas, MOCK_START, 2n * PAGE).rc).toBe(0);
    expect(option(proc, fd, HUGE, SET, ioas, 0n).rc).toBe(0);
    expect(iovaRanges(proc, fd, ioas).alignment).toBe(PAGE);
    // And a new map is then split into PAGE_SIZE pieces but maps the same pages.
    expect(map(proc, fd, ioas, buf, 2n * PAGE, MOCK_START).rc).toBe(0);
    expect(checkMap(proc, fd, md.hwptId, MOCK_START, 2n * PAGE, buf)).toBe(0);
    closeClean(host, proc, fd);
  });

  it('103: unknown option_id, unknown op, or __reserved≠0 → EOPNOTSUPP', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    for (const optionId of [2, 3, 0xffffffff]) {
      for (const op of [GET, SET]) {
        const r = rawOption(proc, fd, { option_id: optionId, op, object_id: ioas, val64: 9n });
        expectErrno(proc, r.rc, EOPNOTSUPP, 'IOMMU_OPTION');
        expect(r.val64).toBe(9n);
      }
    }
    for (const op of [2, 0xffff]) {
      expectErrno(proc, rawOption(proc, fd, { option_id: RLIMIT, op }).rc, EOPNOTSUPP);
      expectErrno(
        proc,
        rawOption(proc, fd, { option_id: HUGE, op, object_id: ioas }).rc,
        EOPNOTSUPP,
        'IOMMU_OPTION',
      );
    }
    for (const reserved of [1, 0x8000]) {
      for (const f of [
        { option_id: RLIMIT, op: GET },
        { option_id: HUGE, op: GET, object_id: ioas },
        { option_id: HUGE, op: SET, object_id: ioas, val64: 0n },
      ]) {
        const r = rawOption(proc, fd, { ...f, __reserved: reserved, val64: f.val64 ?? 5n });
        expectErrno(proc, r.rc, EOPNOTSUPP, 'IOMMU_OPTION');
      }
    }
    // None of the refused SETs took effect.
    expect(option(proc, fd, HUGE, GET, ioas).val64).toBe(1n);
    closeClean(host, proc, fd);
  });

  it('104: val64 is written back on success only', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(option(proc, fd, HUGE, GET, ioas, 0xabcn)).toEqual({ rc: 0, val64: 1n });
    expect(option(proc, fd, RLIMIT, GET, 0, 0xabcn)).toEqual({ rc: 0, val64: 0n });
    // A SET leaves val64 as given.
    expect(option(proc, fd, HUGE, SET, ioas, 1n)).toEqual({ rc: 0, val64: 1n });
    // Failures leave it alone.
    expect(option(proc, fd, HUGE, GET, ioas + 1, 0xabcn)).toEqual({ rc: -ENOENT, val64: 0xabcn });
    expect(option(proc, fd, RLIMIT, GET, 1, 0xabcn)).toEqual({ rc: -EOPNOTSUPP, val64: 0xabcn });
    expect(option(proc, fd, RLIMIT, SET, 0, 0xabcn)).toEqual({ rc: -EBUSY, val64: 0xabcn });
    closeClean(host, proc, fd);
  });
});

/** A root process without CAP_IPC_LOCK (the change_process fixture's drop_cap_ipc_lock). */
function changeProcessSetup(mode: 'default' | 'user' | 'mm', memlockLimitBytes?: bigint) {
  const host = createHost({ selftest: true });
  const proc = host.createProcess({
    privileged: true,
    ipcLock: false,
    ...(memlockLimitBytes === undefined ? {} : { memlockLimitBytes }),
  });
  const fd = proc.open('/dev/iommu');
  if (mode === 'user' || mode === 'mm') {
    expect(option(proc, fd, RLIMIT, SET, 0, mode === 'mm' ? 1n : 0n).rc).toBe(0);
  }
  const ioas = ioasAlloc(proc, fd);
  expect(mockDomain(proc, fd, ioas).rc).toBe(0);
  const mfd = proc.memfdCreate('change_process', 4096);
  return { host, proc, fd, ioas, mfd };
}

describe('2.11 IOMMU_IOAS_CHANGE_PROCESS', () => {
  it('105: any ordinary (VA) map present → EINVAL, nothing moves', () => {
    const { host, proc, fd, ioas, mfd } = changeProcessSetup('default');
    const buf = proc.mmap(4096);
    const va = map(proc, fd, ioas, buf, PAGE);
    expect(va.rc).toBe(0);
    expectErrno(proc, changeProcess(proc, fd), EINVAL, 'IOMMU_IOAS_CHANGE_PROCESS');
    // A file map next to it does not help, and a VA map in another IOAS without a domain counts too.
    expect(mapFile(proc, fd, ioas, mfd, 0n, PAGE).rc).toBe(0);
    expectErrno(proc, changeProcess(proc, fd), EINVAL, 'IOMMU_IOAS_CHANGE_PROCESS');
    expect(unmap(proc, fd, ioas, va.iova, PAGE).rc).toBe(0);
    expect(changeProcess(proc, fd)).toBe(0);
    const other = ioasAlloc(proc, fd);
    expect(map(proc, fd, other, buf, PAGE).rc).toBe(0);
    const child = proc.fork();
    expectErrno(child, changeProcess(child, fd), EINVAL, 'IOMMU_IOAS_CHANGE_PROCESS');
    expect(proc.status().pinnedBytes).toBe(PAGE);
    expect(child.status().pinnedBytes).toBe(0n);
    child.exit();
    closeClean(host, proc, fd);
  });

  it('105: with no IOAS or no maps at all → 0', () => {
    const { host, proc, fd } = setup();
    expect(changeProcess(proc, fd)).toBe(0);
    ioasAlloc(proc, fd);
    expect(changeProcess(proc, fd)).toBe(0);
    closeClean(host, proc, fd);
  });

  // CAP_IPC_LOCK (account mode NONE) is left out: there the kernel moves the source mm but not
  // VmPin (need_charge_update is false), and the model moves VmPin; see the report.
  for (const mode of ['default', 'user', 'mm'] as const) {
    it(`106 (${mode}): only memfd maps → 0 in the same process; in a forked child → 0 and VmPin${mode === 'mm' ? ' and VmLck' : ''} move to the child`, () => {
      const { host, proc, fd, ioas, mfd } = changeProcessSetup(mode);
      const locks = mode === 'mm';
      const userCharged = !locks;
      expect(mapFile(proc, fd, ioas, mfd, 0n, PAGE).rc).toBe(0);
      expect(changeProcess(proc, fd)).toBe(0);
      expect(proc.status()).toMatchObject({
        pinnedBytes: PAGE,
        lockedBytes: locks ? PAGE : 0n,
        userLockedBytes: userCharged ? PAGE : 0n,
      });

      const child = proc.fork();
      expect(child.status()).toMatchObject({ pinnedBytes: 0n, lockedBytes: 0n });
      expect(changeProcess(child, fd)).toBe(0);
      expect(proc.status()).toMatchObject({ pinnedBytes: 0n, lockedBytes: 0n });
      expect(child.status()).toMatchObject({
        pinnedBytes: PAGE,
        lockedBytes: locks ? PAGE : 0n,
        // Same user: its locked_vm neither doubles nor drops.
        userLockedBytes: userCharged ? PAGE : 0n,
      });
      // The mapping itself is untouched.
      expect(ioasReport(proc, fd, ioas)?.areas.map((a) => a.source)).toEqual(['file']);
      expect(host.pinnedPages()).toBe(1);
      // The parent takes it back the same way.
      expect(changeProcess(proc, fd)).toBe(0);
      expect(proc.status().pinnedBytes).toBe(PAGE);
      expect(child.status().pinnedBytes).toBe(0n);
      expect(changeProcess(child, fd)).toBe(0);
      child.exit();
      // Closing the last fd uncharges whoever holds the charge now.
      closeClean(host, proc, fd);
      expect(child.status()).toMatchObject({ pinnedBytes: 0n, lockedBytes: 0n });
      expect(proc.status()).toMatchObject({
        pinnedBytes: 0n,
        lockedBytes: 0n,
        userLockedBytes: 0n,
      });
    });
  }

  it('106: pages shared by two IOASes (COPY) are charged once and move once', () => {
    const { host, proc, fd, ioas, mfd } = changeProcessSetup('mm');
    const other = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, other).rc).toBe(0);
    const m = mapFile(proc, fd, ioas, mfd, 0n, PAGE);
    expect(m.rc).toBe(0);
    expect(copy(proc, fd, other, ioas, m.iova, PAGE).rc).toBe(0);
    const pinnedBefore = proc.status().pinnedBytes;
    expect(pinnedBefore).toBe(PAGE);
    const child = proc.fork();
    expect(changeProcess(child, fd)).toBe(0);
    expect(child.status().pinnedBytes).toBe(pinnedBefore);
    expect(child.status().lockedBytes).toBe(pinnedBefore);
    expect(proc.status()).toMatchObject({ pinnedBytes: 0n, lockedBytes: 0n });
    child.exit();
    closeClean(host, proc, fd);
    expect(child.status().pinnedBytes).toBe(0n);
  });

  it('106: the caller is charged before the old owner is uncharged: a limit that fits the pages only once → ENOMEM, nothing moves', () => {
    for (const [limit, expected] of [
      [PAGE, -ENOMEM],
      [2n * PAGE, 0],
    ] as const) {
      const { host, proc, fd, ioas, mfd } = changeProcessSetup('user', limit);
      expect(mapFile(proc, fd, ioas, mfd, 0n, PAGE).rc).toBe(0);
      expect(proc.status().userLockedBytes).toBe(PAGE);
      const child = proc.fork();
      const rc = changeProcess(child, fd);
      expect(rc).toBe(expected);
      if (rc < 0) {
        expect(child.lastError()).toMatchObject({
          call: 'IOMMU_IOAS_CHANGE_PROCESS',
          name: 'ENOMEM',
        });
        expect(proc.status().pinnedBytes).toBe(PAGE);
        expect(child.status().pinnedBytes).toBe(0n);
      } else {
        expect(proc.status().pinnedBytes).toBe(0n);
        expect(child.status().pinnedBytes).toBe(PAGE);
      }
      expect(proc.status().userLockedBytes).toBe(PAGE);
      child.exit();
      closeClean(host, proc, fd);
      expect(proc.status().userLockedBytes).toBe(0n);
    }
  });

  it('107: __reserved≠0 → EOPNOTSUPP, nothing moves', () => {
    const { host, proc, fd, ioas, mfd } = changeProcessSetup('mm');
    expect(mapFile(proc, fd, ioas, mfd, 0n, PAGE).rc).toBe(0);
    const child = proc.fork();
    for (const reserved of [1, 0xffffffff]) {
      expectErrno(
        child,
        changeProcess(child, fd, reserved),
        EOPNOTSUPP,
        'IOMMU_IOAS_CHANGE_PROCESS',
      );
    }
    expect(proc.status()).toMatchObject({ pinnedBytes: PAGE, lockedBytes: PAGE });
    expect(child.status()).toMatchObject({ pinnedBytes: 0n, lockedBytes: 0n });
    child.exit();
    closeClean(host, proc, fd);
  });
});
